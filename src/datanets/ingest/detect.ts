import { isUtf8 } from 'node:buffer';
import { OpenLedgerError } from '../../errors.ts';
import type { FileKind, Modality } from './types.ts';
import { assertUtf8Text } from './utf8.ts';
import { listZipEntries } from './zip.ts';

export interface DetectedFile {
  kind: FileKind;
  modality: Modality;
  mime: string;
}

const TEXT_MIME: Record<'txt' | 'md' | 'json' | 'jsonl' | 'csv', string> = {
  txt: 'text/plain',
  md: 'text/markdown',
  json: 'application/json',
  jsonl: 'application/jsonl',
  csv: 'text/csv',
};

/** Accepted extensions (lower-case, without the dot) and the kind each names. */
export const ACCEPTED_EXTENSIONS: Readonly<Record<string, FileKind>> = Object.freeze({
  txt: 'txt',
  text: 'txt',
  md: 'md',
  markdown: 'md',
  pdf: 'pdf',
  docx: 'docx',
  json: 'json',
  jsonl: 'jsonl',
  ndjson: 'jsonl',
  csv: 'csv',
  png: 'image',
  jpg: 'image',
  jpeg: 'image',
  webp: 'image',
  gif: 'image',
  wav: 'audio',
  mp3: 'audio',
  ogg: 'audio',
  oga: 'audio',
  flac: 'audio',
});

interface Sniffed {
  /** What the content is, for messages: "a PNG image". */
  what: string;
  mime: string;
  modality?: 'image' | 'audio';
}

function startsWith(bytes: Uint8Array, signature: readonly number[], at = 0): boolean {
  if (bytes.byteLength < at + signature.length) return false;
  for (let i = 0; i < signature.length; i++) if (bytes[at + i] !== signature[i]) return false;
  return true;
}

const ascii = (text: string): number[] => [...text].map((c) => c.charCodeAt(0));

const PDF = ascii('%PDF-');

function findPdfHeader(bytes: Uint8Array): boolean {
  // The PDF spec lets readers accept the header anywhere in the first 1024 bytes.
  const end = Math.min(bytes.byteLength - PDF.length, 1024);
  for (let at = 0; at <= end; at++) if (startsWith(bytes, PDF, at)) return true;
  return false;
}

/** Recognises the binary formats that matter here by their magic bytes; null for anything else. */
function sniff(bytes: Uint8Array): Sniffed | null {
  if (startsWith(bytes, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    return { what: 'a PNG image', mime: 'image/png', modality: 'image' };
  if (startsWith(bytes, [0xff, 0xd8, 0xff]))
    return { what: 'a JPEG image', mime: 'image/jpeg', modality: 'image' };
  if (startsWith(bytes, ascii('GIF87a')) || startsWith(bytes, ascii('GIF89a')))
    return { what: 'a GIF image', mime: 'image/gif', modality: 'image' };
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WEBP'), 8))
    return { what: 'a WebP image', mime: 'image/webp', modality: 'image' };
  if (startsWith(bytes, ascii('RIFF')) && startsWith(bytes, ascii('WAVE'), 8))
    return { what: 'WAV audio', mime: 'audio/wav', modality: 'audio' };
  if (startsWith(bytes, ascii('ID3')) || isMpegFrame(bytes))
    return { what: 'MP3 audio', mime: 'audio/mpeg', modality: 'audio' };
  if (startsWith(bytes, ascii('OggS')))
    return { what: 'Ogg audio', mime: 'audio/ogg', modality: 'audio' };
  if (startsWith(bytes, ascii('fLaC')))
    return { what: 'FLAC audio', mime: 'audio/flac', modality: 'audio' };
  if (startsWith(bytes, PDF)) return { what: 'a PDF document', mime: 'application/pdf' };
  if (startsWith(bytes, [0x50, 0x4b, 0x03, 0x04]) || startsWith(bytes, [0x50, 0x4b, 0x05, 0x06]))
    return { what: 'a ZIP archive', mime: 'application/zip' };
  if (startsWith(bytes, [0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]))
    return { what: 'a legacy Office (OLE2) file', mime: 'application/x-ole-storage' };
  if (startsWith(bytes, [0x1f, 0x8b])) return { what: 'a gzip archive', mime: 'application/gzip' };
  return null;
}

/** An MPEG audio frame header without an ID3 tag: sync bits, a real version, layer II or III. */
function isMpegFrame(bytes: Uint8Array): boolean {
  const [a, b] = [bytes[0], bytes[1]];
  if (a !== 0xff || b === undefined || (b & 0xe0) !== 0xe0) return false;
  const version = (b >> 3) & 0x03;
  const layer = (b >> 1) & 0x03;
  return version !== 0x01 && (layer === 0x01 || layer === 0x02);
}

function extensionOf(fileName: string): string {
  const base = fileName.split(/[\\/]/).pop() ?? '';
  const dot = base.lastIndexOf('.');
  return dot <= 0 ? '' : base.slice(dot + 1).toLowerCase();
}

function acceptedList(): string {
  return Object.keys(ACCEPTED_EXTENSIONS)
    .map((ext) => `.${ext}`)
    .join(', ');
}

function mismatch(fileName: string, ext: string, expected: string, found: string): OpenLedgerError {
  return new OpenLedgerError(
    'FILE_INVALID',
    `"${fileName}" has the .${ext} extension but its content is ${found}, not ${expected}.`,
    {
      hint: 'Upload the file with the extension that matches its content.',
      details: { fileName, extension: ext, expected, found },
    },
  );
}

/**
 * Kind from the file name's extension, confirmed by the content: magic bytes for binary formats,
 * strict UTF-8 (and no binary signature) for text formats. An image or audio file's mime type comes
 * from its content, so a PNG saved as `.jpg` is accepted as `image/png`.
 */
export function detectFile(fileName: string, bytes: Uint8Array): DetectedFile {
  const ext = extensionOf(fileName);
  const kind = ACCEPTED_EXTENSIONS[ext];
  if (kind === undefined) {
    throw new OpenLedgerError(
      'UNSUPPORTED_FILE_TYPE',
      `"${fileName}" is not an accepted file type${ext ? ` (.${ext})` : ' (no extension)'}. Accepted: ${acceptedList()}.`,
      { details: { fileName, accepted: Object.keys(ACCEPTED_EXTENSIONS) } },
    );
  }
  if (bytes.byteLength === 0) {
    throw new OpenLedgerError('FILE_INVALID', `"${fileName}" is empty.`, {
      details: { fileName },
    });
  }
  const sniffed = sniff(bytes);
  const found = sniffed?.what ?? (isUtf8(bytes) ? 'text' : 'unrecognised binary data');
  switch (kind) {
    case 'pdf':
      if (!findPdfHeader(bytes))
        throw mismatch(
          fileName,
          ext,
          'a PDF document',
          sniffed ? found : `${found} without a %PDF- header`,
        );
      return { kind, modality: 'text', mime: 'application/pdf' };
    case 'docx': {
      if (sniffed?.mime === 'application/x-ole-storage') {
        throw mismatch(fileName, ext, 'a Word (.docx) document', 'a legacy Word .doc (OLE2) file');
      }
      if (sniffed?.mime !== 'application/zip') {
        throw mismatch(fileName, ext, 'a Word (.docx) document', found);
      }
      const entries = listZipEntries(bytes);
      if (!entries?.some((entry) => entry.name === 'word/document.xml')) {
        throw mismatch(
          fileName,
          ext,
          'a Word (.docx) document',
          entries ? 'a ZIP archive without word/document.xml' : 'an unreadable ZIP archive',
        );
      }
      return {
        kind,
        modality: 'text',
        mime: 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
      };
    }
    case 'image':
    case 'audio':
      if (sniffed?.modality !== kind) {
        throw mismatch(fileName, ext, kind === 'image' ? 'an image' : 'audio', found);
      }
      return { kind, modality: kind, mime: sniffed.mime };
    default: {
      // Valid UTF-8 without NULs is text, even if it happens to start like "ID3" or "RIFF".
      try {
        assertUtf8Text(bytes);
      } catch (error) {
        if (sniffed) throw mismatch(fileName, ext, 'UTF-8 text', found);
        if (error instanceof OpenLedgerError) {
          throw new OpenLedgerError('FILE_INVALID', `"${fileName}": ${error.message}`, {
            hint: error.hint,
            details: { fileName, ...(error.details as object) },
          });
        }
        throw error;
      }
      return { kind, modality: 'text', mime: TEXT_MIME[kind] };
    }
  }
}
