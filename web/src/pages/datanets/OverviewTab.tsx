import { useState, type FormEvent } from 'react';
import { isAddress } from 'viem';
import { Card } from '../../components/ui';
import { datanetsApi, type Address } from '../../lib/api';
import { formatDate } from '../../lib/format';
import type { DatanetTabProps } from './DatanetDetail';
import { ActionStep, formatBytes, Hash, useAction } from './common';
import { authorization, registryTypedData, signingContext, useActingWallet } from './signing';

/** The owner appoints and removes curators: each change is a signed SetCurator, relayed on-chain. */
function CuratorControls({ datanet, reload }: Pick<DatanetTabProps, 'datanet' | 'reload'>) {
  const wallet = useActingWallet();
  const { busy, step, run } = useAction();
  const [address, setAddress] = useState('');

  const change = (curator: Address, enabled: boolean) =>
    run(async (setStep) => {
      if (!wallet.address) throw new Error('Sign in first.');
      setStep('Signing…');
      const ctx = await signingContext(wallet.address);
      const signature = await wallet.sign(
        registryTypedData.setCurator(ctx, {
          owner: wallet.address,
          id: BigInt(datanet.id),
          curator,
          enabled,
        }),
      );
      setStep('Recording on-chain…');
      await datanetsApi.setCurator(datanet.id, {
        curator,
        enabled,
        authorization: authorization(signature, ctx),
      });
      await reload();
      setAddress('');
    });

  const submit = (event: FormEvent) => {
    event.preventDefault();
    void change(address.trim() as Address, true);
  };
  const valid = isAddress(address.trim());

  return (
    <div className="curator-controls" data-testid="curator-controls">
      {datanet.curators.map((c) => (
        <div key={c} className="curator-row">
          <Hash value={c} copy />
          <button
            type="button"
            className="button button-danger-ghost button-small"
            disabled={busy}
            onClick={() => void change(c, false)}
            data-testid="remove-curator"
          >
            Remove
          </button>
        </div>
      ))}
      <form className="curator-row" onSubmit={submit}>
        <input
          type="text"
          placeholder="0x… address of a new curator"
          value={address}
          onChange={(e) => setAddress(e.target.value)}
          aria-label="Curator address"
          data-testid="curator-address-input"
        />
        <button
          type="submit"
          className="button button-secondary button-small"
          disabled={busy || !valid}
          data-testid="add-curator"
        >
          Appoint curator
        </button>
      </form>
      <ActionStep step={step} testId="curator-step" />
    </div>
  );
}

export function OverviewTab({ datanet, owner, reload }: DatanetTabProps) {
  const { rules } = datanet;
  return (
    <div className="grid">
      <Card title="About" testId="overview-about">
        {datanet.description ? (
          <p className="prose" data-testid="datanet-description">
            {datanet.description}
          </p>
        ) : (
          <p className="muted" data-testid="datanet-description">
            No description.
          </p>
        )}
        {datanet.tags.length > 0 && (
          <ul className="tag-list" data-testid="datanet-tags">
            {datanet.tags.map((t) => (
              <li key={t} className="chip">
                {t}
              </li>
            ))}
          </ul>
        )}
      </Card>

      <Card title="Provenance" testId="overview-provenance">
        <dl className="kv">
          <dt>Datanet id</dt>
          <dd data-testid="datanet-id">{datanet.id}</dd>
          <dt>Owner</dt>
          <dd>
            <Hash value={datanet.owner} testId="datanet-owner" copy />
            {owner && <span className="muted small"> (you)</span>}
          </dd>
          <dt>Curators</dt>
          <dd data-testid="datanet-curators">
            {owner ? (
              <CuratorControls datanet={datanet} reload={reload} />
            ) : datanet.curators.length === 0 ? (
              <span className="muted">Only the owner curates.</span>
            ) : (
              <ul className="plain-list">
                {datanet.curators.map((c) => (
                  <li key={c}>
                    <Hash value={c} copy />
                  </li>
                ))}
              </ul>
            )}
          </dd>
          <dt>Read access</dt>
          <dd data-testid="overview-can-read" data-can-read={String(datanet.canRead)}>
            {datanet.policy === 'open'
              ? 'Open: anyone may read the content.'
              : datanet.canRead
                ? 'Permissioned: you may read the content.'
                : 'Permissioned: you may not read the content without a grant.'}
          </dd>
          <dt>Metadata hash</dt>
          <dd>
            <Hash value={datanet.metadataHash} testId="datanet-metadata-hash" copy />
          </dd>
          <dt>Created</dt>
          <dd>{formatDate(datanet.createdAt)}</dd>
          <dt>Creation tx</dt>
          <dd>
            <Hash value={datanet.txHash} testId="datanet-tx" copy />
          </dd>
        </dl>
      </Card>

      <Card title="Contribution rules" testId="overview-rules">
        <dl className="kv">
          <dt>Licence</dt>
          <dd data-testid="datanet-license">{datanet.license}</dd>
          <dt>File types</dt>
          <dd>{rules.acceptedTypes.join(', ')}</dd>
          <dt>Largest file</dt>
          <dd>{formatBytes(rules.maxFileBytes)}</dd>
          <dt>Daily quota</dt>
          <dd>
            {rules.dailyQuotaPerContributor} per contributor, {rules.dailyQuotaPerDatanet} in all
          </dd>
        </dl>
      </Card>
    </div>
  );
}
