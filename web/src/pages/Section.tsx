import { Icon } from '../components/icons';
import { PageHeader } from '../components/PageHeader';

export interface SectionInfo {
  id: string;
  title: string;
  description: string;
}

// Sections whose features land in later releases. They describe what the
// section does and say plainly that it is not available yet — no mock data. (None at present:
// governance, the last of them, has its page.)
export const SECTIONS: Record<string, SectionInfo> = {};

export function SectionPage({ section }: { section: SectionInfo }) {
  return (
    <div className="page" data-testid={`page-${section.id}`}>
      <PageHeader title={section.title} />
      <p className="section-description" data-testid="section-description">
        {section.description}
      </p>
      <div className="notice notice-pending" data-testid="not-available">
        <Icon name="info" />
        <div>
          <p className="notice-title">Not available on this node yet</p>
          <p className="muted">
            This section is part of the OpenLedger product but its features have not shipped in this
            version of the node.
          </p>
        </div>
      </div>
    </div>
  );
}
