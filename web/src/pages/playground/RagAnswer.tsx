// A Playground answer from datanets (the request's `rag` field, docs/web.md): the answer with each
// `[n]` linking to the cited row's page (its chunk highlighted), then a "Sources" panel with every
// numbered source, its datanet and version, a snippet, its contributor and whether the answer
// cites it. Links open in a new tab so the conversation stays.
import type { ReactNode } from 'react';
import { Badge } from '../../components/ui';
import { shortAddress } from '../../lib/format';
import { contributorPath } from '../datanets/common';
import type { RagCitation, RagInfo, RagSource } from '../../../../src/util/openai-stream.ts';

export type { RagCitation, RagInfo, RagSource };

/** The row page of a source, its chunk's characters highlighted. */
export function sourceRowPath(s: {
  datanet_id: number;
  row_id: string;
  char_start: number;
  char_end: number;
}): string {
  const range = new URLSearchParams({ start: String(s.char_start), end: String(s.char_end) });
  return `/datanets/${s.datanet_id}/rows/${encodeURIComponent(s.row_id)}?${range}`;
}

/** A citation marker as the node reads it: `[1]`, `[1, 3]`. */
const MARKER = /\[\s*\d+(?:\s*,\s*\d+)*\s*\]/g;

type Verdict = 'cited' | 'unsupported' | 'none';

/** Per source number: cited (a supported citation), unsupported (only unsupported ones), none. */
function verdicts(citations: readonly RagCitation[]): Map<number, Verdict> {
  const out = new Map<number, Verdict>();
  for (const c of citations) {
    if (c.supported) out.set(c.n, 'cited');
    else if (out.get(c.n) !== 'cited') out.set(c.n, 'unsupported');
  }
  return out;
}

function snippet(text: string, max = 280): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

function CitationLink({
  source,
  verdict,
  children,
}: {
  source: RagSource;
  verdict: Verdict;
  children: ReactNode;
}) {
  return (
    <a
      href={sourceRowPath(source)}
      target="_blank"
      rel="noopener"
      className="rag-citation"
      title={`Source ${source.n}${verdict === 'unsupported' ? ' (does not support this)' : ''}: ${snippet(source.text, 200)}`}
      data-testid={`citation-${source.n}`}
      data-n={source.n}
      data-datanet-id={source.datanet_id}
      data-row-id={source.row_id}
      data-supported={verdict === 'unsupported' ? 'false' : 'true'}
    >
      {children}
    </a>
  );
}

/** The answer's text with each `[n]` naming a source as a link to that source's row. */
export function citedText(
  text: string,
  sources: readonly RagSource[],
  citations: readonly RagCitation[],
): ReactNode[] {
  const byN = new Map(sources.map((s) => [s.n, s]));
  const verdict = verdicts(citations);
  const out: ReactNode[] = [];
  let pos = 0;
  let key = 0;
  for (const m of text.matchAll(MARKER)) {
    const numbers = [...m[0].matchAll(/\d+/g)].map((d) => Number(d[0]));
    if (!numbers.some((n) => byN.has(n))) continue;
    if (m.index > pos) out.push(text.slice(pos, m.index));
    const only = numbers.length === 1 ? byN.get(numbers[0]!) : undefined;
    if (only) {
      out.push(
        <CitationLink key={key++} source={only} verdict={verdict.get(only.n) ?? 'none'}>
          {m[0]}
        </CitationLink>,
      );
    } else {
      // `[1, 3]`: the brackets and separators stay text, each known number is a link.
      let inner = 0;
      for (const d of m[0].matchAll(/\d+/g)) {
        const source = byN.get(Number(d[0]));
        if (!source) continue;
        if (d.index > inner) out.push(m[0].slice(inner, d.index));
        out.push(
          <CitationLink key={key++} source={source} verdict={verdict.get(source.n) ?? 'none'}>
            {d[0]}
          </CitationLink>,
        );
        inner = d.index + d[0].length;
      }
      out.push(m[0].slice(inner));
    }
    pos = m.index + m[0].length;
  }
  if (pos < text.length) out.push(text.slice(pos));
  return out;
}

const ANSWER_NOTE: Record<RagInfo['answer'], string | null> = {
  model: null,
  extractive:
    'The sources did not support the model’s answer, so this is the source sentence that best matches the question.',
  'not-in-sources':
    'The sources did not support the model’s answer, and no source sentence matches the question.',
};

export function RagAnswer({
  text,
  rag,
  citations,
  stats,
  datanetNames,
}: {
  text: string;
  rag: RagInfo;
  citations: readonly RagCitation[];
  /** The answer's stats line, shown between the answer and its sources. */
  stats: ReactNode;
  /** Datanet names by id, where known. */
  datanetNames: ReadonlyMap<number, string>;
}) {
  const verdict = verdicts(citations);
  const note = ANSWER_NOTE[rag.answer];
  return (
    <>
      <p
        className="playground-text"
        data-testid="playground-text"
        data-rag-answer={rag.answer}
        data-strict={String(rag.strict)}
      >
        {citedText(text, rag.sources, citations)}
      </p>
      {stats}
      <div
        className="playground-attribution"
        data-testid="rag-sources"
        data-answer={rag.answer}
        data-sources={rag.sources.length}
      >
        <p className="small strong">Sources</p>
        {note && (
          <p className="muted small" data-testid="rag-answer-note">
            {note}
          </p>
        )}
        {rag.sources.length === 0 ? (
          <p className="muted small" data-testid="rag-sources-empty">
            No row of the chosen datanets matched the question.
          </p>
        ) : (
          <ol className="plain-list">
            {rag.sources.map((s) => {
              const v = verdict.get(s.n) ?? 'none';
              const name = datanetNames.get(s.datanet_id);
              return (
                <li
                  key={s.n}
                  data-testid={`rag-source-${s.n}`}
                  data-n={s.n}
                  data-datanet-id={s.datanet_id}
                  data-version={s.version}
                  data-row-id={s.row_id}
                  data-contributor={s.contributor}
                  data-cited={v}
                >
                  <p className="small">
                    <a
                      href={sourceRowPath(s)}
                      target="_blank"
                      rel="noopener"
                      className="strong"
                      data-testid="rag-source-link"
                    >
                      [{s.n}]
                    </a>{' '}
                    <a
                      href={`/datanets/${s.datanet_id}`}
                      target="_blank"
                      rel="noopener"
                      data-testid="rag-source-datanet"
                    >
                      {name ? `${name} (#${s.datanet_id})` : `datanet #${s.datanet_id}`}
                    </a>{' '}
                    <span className="muted" title="First version that holds the row">
                      v{s.version}
                    </span>
                    {' · '}
                    <a
                      href={contributorPath(s.contributor)}
                      target="_blank"
                      rel="noopener"
                      className="mono contributor-link"
                      title={`${s.contributor}: contributor profile`}
                      data-testid="rag-source-contributor"
                      data-address={s.contributor}
                    >
                      {shortAddress(s.contributor)}
                    </a>{' '}
                    {v === 'cited' && (
                      <Badge tone="ok" testId="rag-source-cited">
                        cited
                      </Badge>
                    )}
                    {v === 'unsupported' && (
                      <span title="The answer cites this source for a sentence it does not support">
                        <Badge tone="warn" testId="rag-source-unsupported">
                          unsupported
                        </Badge>
                      </span>
                    )}
                  </p>
                  <p className="muted small" title={s.text} data-testid="rag-source-snippet">
                    {snippet(s.text)}
                  </p>
                </li>
              );
            })}
          </ol>
        )}
        {rag.dropped_sources > 0 && (
          <p className="muted small" data-testid="rag-dropped">
            {rag.dropped_sources} more retrieved source{rag.dropped_sources === 1 ? '' : 's'} did
            not fit the model&apos;s context.
          </p>
        )}
      </div>
    </>
  );
}
