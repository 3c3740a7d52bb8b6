import { PageHeader } from '../components/PageHeader';
import { Link, useRouter } from '../lib/router';

export function NotFound() {
  const { path } = useRouter();
  return (
    <div className="page" data-testid="page-not-found">
      <PageHeader title="Page not found" />
      <p className="muted">
        There is no page at <code>{path}</code>. <Link to="/">Go to the dashboard</Link>.
      </p>
    </div>
  );
}
