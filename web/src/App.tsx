import { lazy, Suspense } from 'react';
import { Layout } from './components/Layout';
import { Spinner } from './components/ui';
import { AuthProvider } from './lib/auth';
import { NodeProvider } from './lib/node';
import { NotifyProvider } from './lib/notify';
import { RouterProvider, useRouter } from './lib/router';
import { Dashboard } from './pages/Dashboard';
import { ContributorProfilePage } from './pages/datanets/ContributorProfile';
import { CreateDatanetPage } from './pages/datanets/CreateDatanet';
import { DatanetDetailPage } from './pages/datanets/DatanetDetail';
import { DatanetsListPage } from './pages/datanets/DatanetsList';
import { RowPage } from './pages/datanets/RowPage';
import { FactoryPage } from './pages/factory/FactoryJobs';
import { NewTrainingRunPage } from './pages/factory/NewTrainingRun';
import { TrainingJobPage } from './pages/factory/TrainingJob';
import { KeysPage } from './pages/Keys';
import { ModelsPage } from './pages/models/ModelsList';
import { NotFound } from './pages/NotFound';
import { PlaygroundPage } from './pages/playground/Playground';
import { EscrowPage } from './pages/escrow/EscrowPage';
import { RewardsPage } from './pages/rewards/RewardsPage';
import { SECTIONS, SectionPage } from './pages/Section';

// The market, proposals, agents and governance pages send transactions from the wallet
// (lib/chain.ts, viem's clients): their own chunk, loaded when one is opened.
const MarketPage = lazy(() =>
  import('./pages/market/MarketPage').then((m) => ({ default: m.MarketPage })),
);
const ModelMarketPage = lazy(() =>
  import('./pages/market/ModelPage').then((m) => ({ default: m.ModelMarketPage })),
);
const ProposalsPage = lazy(() =>
  import('./pages/proposals/ProposalsPage').then((m) => ({ default: m.ProposalsPage })),
);
const ProposalPage = lazy(() =>
  import('./pages/proposals/ProposalPage').then((m) => ({ default: m.ProposalPage })),
);
const AgentsPage = lazy(() =>
  import('./pages/agents/AgentsPage').then((m) => ({ default: m.AgentsPage })),
);
const AgentPage = lazy(() =>
  import('./pages/agents/AgentPage').then((m) => ({ default: m.AgentPage })),
);
const GovernancePage = lazy(() =>
  import('./pages/governance/GovernancePage').then((m) => ({ default: m.GovernancePage })),
);

function Routes() {
  const { path } = useRouter();
  if (path === '/') return <Dashboard />;
  if (path === '/keys') return <KeysPage />;
  if (path === '/datanets') return <DatanetsListPage />;
  if (path === '/datanets/new') return <CreateDatanetPage />;
  const datanet = /^\/datanets\/([1-9][0-9]{0,8})$/.exec(path);
  if (datanet) return <DatanetDetailPage key={datanet[1]} id={Number(datanet[1])} />;
  const row = /^\/datanets\/([1-9][0-9]{0,8})\/rows\/([0-9a-fA-F-]{36})$/.exec(path);
  if (row)
    return (
      <RowPage
        key={`${row[1]}/${row[2]}${window.location.search}`}
        id={Number(row[1])}
        rowId={row[2]!.toLowerCase()}
      />
    );
  const contributor = /^\/contributors\/(0x[0-9a-fA-F]{40})$/.exec(path);
  if (contributor) return <ContributorProfilePage key={contributor[1]} address={contributor[1]!} />;
  if (path === '/factory') return <FactoryPage />;
  if (path === '/factory/new') return <NewTrainingRunPage />;
  const job = /^\/factory\/jobs\/([0-9a-fA-F-]{36})$/.exec(path);
  if (job) return <TrainingJobPage key={job[1]} id={job[1]!.toLowerCase()} />;
  if (path === '/models') return <ModelsPage />;
  if (path === '/playground') return <PlaygroundPage />;
  if (path === '/escrow') return <EscrowPage />;
  if (path === '/rewards') return <RewardsPage />;
  if (path === '/market') return <MarketPage />;
  const marketModel = /^\/market\/models\/([1-9][0-9]{0,8})$/.exec(path);
  if (marketModel) return <ModelMarketPage key={marketModel[1]} id={Number(marketModel[1])} />;
  if (path === '/proposals') return <ProposalsPage />;
  const proposal = /^\/proposals\/([1-9][0-9]{0,8})$/.exec(path);
  if (proposal) return <ProposalPage key={proposal[1]} id={Number(proposal[1])} />;
  if (path === '/agents') return <AgentsPage />;
  const agent = /^\/agents\/([a-z0-9][a-z0-9-]{1,46}[a-z0-9]|[1-9][0-9]{0,8})$/.exec(path);
  if (agent) return <AgentPage key={agent[1]} name={agent[1]!} />;
  if (path === '/governance') return <GovernancePage />;
  const section = Object.hasOwn(SECTIONS, path) ? SECTIONS[path] : undefined;
  if (section) return <SectionPage key={section.id} section={section} />;
  return <NotFound />;
}

export function App() {
  return (
    <RouterProvider>
      <NodeProvider>
        <AuthProvider>
          <NotifyProvider>
            <Layout>
              <Suspense fallback={<Spinner label="Loading the page…" />}>
                <Routes />
              </Suspense>
            </Layout>
          </NotifyProvider>
        </AuthProvider>
      </NodeProvider>
    </RouterProvider>
  );
}
