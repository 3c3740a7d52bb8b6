import { Fragment } from 'react';
import type { TemplatePreview as Preview } from '../../lib/api';

/**
 * How a SentencePiece piece reads: ▁ is a space, <0x0A> a line break, a byte-fallback piece of a
 * printable ASCII character that character (e.g. `<0x7C>` is `|`); other bytes stay as they are.
 */
function display(piece: string): { text: string; newline: boolean } {
  const byte = /^<0x([0-9A-Fa-f]{2})>$/.exec(piece);
  if (byte) {
    const code = parseInt(byte[1]!, 16);
    if (code === 0x0a) return { text: '↵', newline: true };
    if (code === 0x09) return { text: '⇥', newline: false };
    if (code >= 0x20 && code < 0x7f) return { text: String.fromCharCode(code), newline: false };
    return { text: piece, newline: false };
  }
  const text = piece.replace(/▁/g, ' ');
  if (text.includes('\n')) return { text: text.replace(/\n/g, '↵'), newline: true };
  return { text, newline: false };
}

/** The rendered row, token by token: masked pieces greyed, trained ones highlighted. */
export function TemplatePreviewView({ preview }: { preview: Preview }) {
  const masked = preview.pieces.filter((p) => p.masked).length;
  return (
    <div
      className="template-preview"
      data-testid="template-preview"
      data-pieces={preview.pieces.length}
      data-masked={masked}
      data-trained={preview.trainedTokens}
    >
      <div className="token-stream" aria-label="Tokens of the rendered row">
        {preview.pieces.map((p, i) => {
          const { text, newline } = display(p.piece);
          return (
            <Fragment key={i}>
              <span
                className={`tok ${p.masked ? 'tok-masked' : 'tok-trained'}`}
                title={`token ${p.id} ${JSON.stringify(p.piece)}: ${p.masked ? 'masked (context, no loss)' : 'trained (loss)'}`}
                data-testid="preview-piece"
                data-masked={p.masked ? 'true' : 'false'}
              >
                {text}
              </span>
              {newline && <br />}
            </Fragment>
          );
        })}
      </div>
      <div className="preview-legend small">
        <span>
          <span className="tok tok-masked">masked</span> context: no loss
        </span>
        <span>
          <span className="tok tok-trained">trained</span> the model learns to write these
        </span>
        <span className="muted" data-testid="preview-counts">
          {preview.pieces.length} tokens, {masked} masked,{' '}
          <strong data-testid="preview-trained-count">{preview.trainedTokens}</strong> trained
          {preview.truncated ? ' · cut at the token limit' : ''}
        </span>
      </div>
    </div>
  );
}
