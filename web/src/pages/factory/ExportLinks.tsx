/**
 * Downloads of a succeeded training job's adapter (GET /api/factory/jobs/:id/export): the
 * llama.cpp GGUF LoRA, a merged full GGUF, and the two files of a Hugging Face PEFT folder. Plain
 * links: the session cookie authenticates them, and the browser saves the files.
 */
function exportUrl(jobId: string, query: string): string {
  return `/api/factory/jobs/${encodeURIComponent(jobId)}/export?${query}`;
}

const LINKS: { query: string; label: string; note: string; testId: string }[] = [
  {
    query: 'format=gguf',
    label: 'GGUF LoRA',
    note: 'for llama.cpp (--lora) and Ollama (ADAPTER), over the base model',
    testId: 'export-gguf',
  },
  {
    query: 'format=merged',
    label: 'Merged GGUF (F16)',
    note: 'the base model with the adapter merged in; runs on its own',
    testId: 'export-merged',
  },
  {
    query: 'format=merged&type=f32',
    label: 'Merged GGUF (F32)',
    note: 'merged weights kept exactly, twice the size',
    testId: 'export-merged-f32',
  },
  {
    query: 'format=peft&file=adapter_config.json',
    label: 'PEFT adapter_config.json',
    note: 'Hugging Face PEFT: put both files in one folder',
    testId: 'export-peft-config',
  },
  {
    query: 'format=peft&file=adapter_model.safetensors',
    label: 'PEFT adapter_model.safetensors',
    note: 'q/k rows in the Hugging Face model’s order',
    testId: 'export-peft-weights',
  },
];

export function ExportLinks({ jobId }: { jobId: string }) {
  return (
    <>
      <h3 className="job-subtitle">Export</h3>
      <ul className="export-links" data-testid="job-exports">
        {LINKS.map((link) => (
          <li key={link.testId}>
            <a
              className="button button-secondary button-small"
              href={exportUrl(jobId, link.query)}
              download
              data-testid={link.testId}
            >
              {link.label}
            </a>{' '}
            <span className="muted small">{link.note}</span>
          </li>
        ))}
      </ul>
    </>
  );
}
