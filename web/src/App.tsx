import { Layout } from './components/Layout';
import { AuthProvider } from './lib/auth';
import { NodeProvider } from './lib/node';
import { NotifyProvider } from './lib/notify';
import { RouterProvider, useRouter } from './lib/router';
import { Dashboard } from './pages/Dashboard';
import { KeysPage } from './pages/Keys';
import { NotFound } from './pages/NotFound';
import { SECTIONS, SectionPage } from './pages/Section';

function Routes() {
  const { path } = useRouter();
  if (path === '/') return <Dashboard />;
  if (path === '/keys') return <KeysPage />;
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
              <Routes />
            </Layout>
          </NotifyProvider>
        </AuthProvider>
      </NodeProvider>
    </RouterProvider>
  );
}
