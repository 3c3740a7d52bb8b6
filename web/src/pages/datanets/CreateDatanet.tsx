import { useState, type FormEvent } from 'react';
import { PageHeader } from '../../components/PageHeader';
import { Card, Spinner } from '../../components/ui';
import {
  datanetsApi,
  type DatanetMetadataInput,
  type DatanetModality,
  type DatanetPolicy,
} from '../../lib/api';
import { useAuth } from '../../lib/auth';
import { Link, useRouter } from '../../lib/router';
import { ActionStep, SignInNotice, useAction } from './common';
import { authorization, registryTypedData, signingContext, useActingWallet } from './signing';

const list = (text: string) =>
  text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);

function CreateForm() {
  const { navigate } = useRouter();
  const wallet = useActingWallet();
  const { busy, step, run } = useAction();
  const [name, setName] = useState('');
  const [summary, setSummary] = useState('');
  const [description, setDescription] = useState('');
  const [tags, setTags] = useState('');
  const [modality, setModality] = useState<DatanetModality>('text');
  const [license, setLicense] = useState('CC-BY-4.0');
  const [policy, setPolicy] = useState<DatanetPolicy>('open');
  const [acceptedTypes, setAcceptedTypes] = useState('');
  const [maxFileMiB, setMaxFileMiB] = useState('');
  const [dailyQuota, setDailyQuota] = useState('');

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    const created = await run(async (setStep) => {
      const owner = wallet.address!;
      const input: DatanetMetadataInput = {
        name,
        summary,
        description,
        tags: list(tags),
        modality,
        license: license.trim() || 'CC-BY-4.0',
        policy,
        rules: {
          ...(acceptedTypes.trim() ? { acceptedTypes: list(acceptedTypes) } : {}),
          ...(maxFileMiB.trim()
            ? { maxFileBytes: Math.round(Number(maxFileMiB) * 1024 * 1024) }
            : {}),
          ...(dailyQuota.trim() ? { dailyQuotaPerContributor: Number(dailyQuota) } : {}),
        },
      };
      // The node normalises the metadata (defaults, sorted tags); its hash is what is signed.
      setStep('Checking the metadata…');
      const { metadata, metadataHash } = await datanetsApi.normalizeMetadata(input);
      setStep('Reading your registry nonce…');
      const ctx = await signingContext(owner);
      setStep('Waiting for the signature…');
      const signature = await wallet.sign(
        registryTypedData.createDatanet(ctx, { owner, metadataHash, policy: metadata.policy }),
      );
      setStep('Registering the datanet on-chain…');
      return datanetsApi.create(metadata, authorization(signature, ctx));
    });
    if (created) navigate(`/datanets/${created.id}`);
  };

  return (
    <form className="form" onSubmit={submit} noValidate data-testid="create-datanet-form">
      <Card title="Describe the datanet">
        <div className="form-grid">
          <label className="field field-wide">
            <span className="field-label">Name</span>
            <input
              type="text"
              value={name}
              onChange={(e) => setName(e.target.value)}
              placeholder="e.g. Cardiology case notes"
              maxLength={80}
              required
              data-testid="datanet-name-input"
            />
            <span className="field-help">3 to 80 characters.</span>
          </label>
          <label className="field field-wide">
            <span className="field-label">Summary</span>
            <input
              type="text"
              value={summary}
              onChange={(e) => setSummary(e.target.value)}
              placeholder="One line shown in the list"
              maxLength={280}
              data-testid="datanet-summary-input"
            />
          </label>
          <label className="field field-wide">
            <span className="field-label">Description</span>
            <textarea
              value={description}
              onChange={(e) => setDescription(e.target.value)}
              rows={6}
              maxLength={20000}
              placeholder="What belongs in this datanet, and what does not. Validation scores each contribution's relevance against this text."
              data-testid="datanet-description-input"
            />
          </label>
          <label className="field">
            <span className="field-label">Tags</span>
            <input
              type="text"
              value={tags}
              onChange={(e) => setTags(e.target.value)}
              placeholder="comma separated, e.g. medical, english"
              data-testid="datanet-tags-input"
            />
          </label>
          <label className="field">
            <span className="field-label">Licence of contributions</span>
            <input
              type="text"
              value={license}
              onChange={(e) => setLicense(e.target.value)}
              maxLength={100}
              data-testid="datanet-license-input"
            />
          </label>
          <label className="field">
            <span className="field-label">Modality</span>
            <select
              value={modality}
              onChange={(e) => setModality(e.target.value as DatanetModality)}
              data-testid="datanet-modality-select"
            >
              <option value="text">Text</option>
              <option value="image">Image</option>
              <option value="audio">Audio</option>
            </select>
          </label>
          <fieldset className="field">
            <legend className="field-label">Access policy</legend>
            <label className="radio">
              <input
                type="radio"
                name="policy"
                value="open"
                checked={policy === 'open'}
                onChange={() => setPolicy('open')}
                data-testid="datanet-policy-open"
              />
              <span>
                <strong>Open</strong> — anyone may read the content
              </span>
            </label>
            <label className="radio">
              <input
                type="radio"
                name="policy"
                value="permissioned"
                checked={policy === 'permissioned'}
                onChange={() => setPolicy('permissioned')}
                data-testid="datanet-policy-permissioned"
              />
              <span>
                <strong>Permissioned</strong> — you grant read access on-chain
              </span>
            </label>
          </fieldset>
        </div>
      </Card>

      <Card title="Contribution rules">
        <div className="form-grid">
          <label className="field">
            <span className="field-label">Accepted file types</span>
            <input
              type="text"
              value={acceptedTypes}
              onChange={(e) => setAcceptedTypes(e.target.value)}
              placeholder={
                modality === 'text' ? 'all: txt, md, pdf, docx, json, jsonl, csv' : modality
              }
              data-testid="datanet-types-input"
            />
          </label>
          <label className="field">
            <span className="field-label">Largest file (MiB)</span>
            <input
              type="number"
              min={0.001}
              step="any"
              value={maxFileMiB}
              onChange={(e) => setMaxFileMiB(e.target.value)}
              placeholder="20"
              data-testid="datanet-max-file-input"
            />
          </label>
          <label className="field">
            <span className="field-label">Contributions per contributor per day</span>
            <input
              type="number"
              min={1}
              step={1}
              value={dailyQuota}
              onChange={(e) => setDailyQuota(e.target.value)}
              placeholder="100"
              data-testid="datanet-quota-input"
            />
          </label>
        </div>
      </Card>

      <div className="form-actions">
        <button
          type="submit"
          className="button button-primary"
          disabled={busy}
          data-testid="create-datanet-submit"
        >
          {busy ? 'Creating…' : 'Sign & create datanet'}
        </button>
        <Link to="/datanets" className="button button-ghost">
          Cancel
        </Link>
        <ActionStep step={step} testId="create-datanet-step" />
      </div>
      <p className="muted small">
        Your wallet signs a <code>CreateDatanet</code> message (EIP-712) over the metadata hash; the
        node relays it to the registry and pays the gas. You become the datanet&apos;s owner.
      </p>
    </form>
  );
}

export function CreateDatanetPage() {
  const { session, checking } = useAuth();
  return (
    <div className="page" data-testid="page-datanet-create">
      <Link to="/datanets" className="back-link" data-testid="back-to-datanets">
        ← Datanets
      </Link>
      <PageHeader title="New datanet">
        Create a community dataset: describe its domain, choose the licence contributors agree to,
        and whether anyone may read it.
      </PageHeader>
      {checking ? (
        <Spinner label="Checking session…" />
      ) : !session ? (
        <SignInNotice title="Sign in to create a datanet">
          A datanet is owned by the wallet that creates it. Connect your wallet and sign in first.
        </SignInNotice>
      ) : (
        <CreateForm key={session.address} />
      )}
    </div>
  );
}
