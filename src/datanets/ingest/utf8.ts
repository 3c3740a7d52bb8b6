import { isUtf8 } from 'node:buffer';
import { OpenLedgerError } from '../../errors.ts';

const decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: false });

/**
 * Decodes strictly-valid UTF-8 (a leading byte-order mark is dropped). Anything else is refused
 * with FILE_INVALID naming the byte offset and line of the first bad sequence: guessing another
 * encoding would put garbled text into the datanet under the contributor's name.
 */
export function decodeUtf8(bytes: Uint8Array): string {
  assertUtf8Text(bytes);
  return decoder.decode(bytes);
}

/** Refuses UTF-16, ill-formed UTF-8 and binary data (NUL bytes) with FILE_INVALID. */
export function assertUtf8Text(bytes: Uint8Array): void {
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new OpenLedgerError('FILE_INVALID', 'The file is UTF-16 text; only UTF-8 is accepted.', {
      hint: 'Save the file as UTF-8 and upload it again.',
    });
  }
  if (!isUtf8(bytes)) {
    const offset = firstInvalidUtf8(bytes);
    const line = lineAt(bytes, offset);
    throw new OpenLedgerError(
      'FILE_INVALID',
      `The file is not valid UTF-8: the bytes at offset ${offset} (line ${line}) are not a UTF-8 sequence.`,
      { hint: 'Save the file as UTF-8 and upload it again.', details: { offset, line } },
    );
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    throw new OpenLedgerError(
      'FILE_INVALID',
      `The file holds a NUL byte at offset ${nul} (line ${lineAt(bytes, nul)}): it is binary, not text.`,
      { details: { offset: nul, line: lineAt(bytes, nul) } },
    );
  }
}

/** Byte offset of the first ill-formed UTF-8 sequence (per the Unicode standard), or -1. */
export function firstInvalidUtf8(bytes: Uint8Array): number {
  let i = 0;
  const n = bytes.byteLength;
  while (i < n) {
    const b = bytes[i]!;
    if (b < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min = 0x80;
    let max = 0xbf;
    if (b >= 0xc2 && b <= 0xdf) need = 1;
    else if (b >= 0xe0 && b <= 0xef) {
      need = 2;
      if (b === 0xe0) min = 0xa0;
      if (b === 0xed) max = 0x9f; // no UTF-16 surrogates
    } else if (b >= 0xf0 && b <= 0xf4) {
      need = 3;
      if (b === 0xf0) min = 0x90;
      if (b === 0xf4) max = 0x8f; // nothing above U+10FFFF
    } else return i;
    const second = bytes[i + 1];
    if (second === undefined || second < min || second > max) return i;
    for (let k = 2; k <= need; k++) {
      const next = bytes[i + k];
      if (next === undefined || next < 0x80 || next > 0xbf) return i;
    }
    i += need + 1;
  }
  return -1;
}

function lineAt(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return line;
}
