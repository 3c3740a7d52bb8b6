import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it, mock } from 'node:test';
import { Document, Packer, Paragraph } from 'docx';
import { PDFDocument, StandardFonts } from 'pdf-lib';
import {
  MinHashIndex,
  assessRow,
  canonicalJson,
  detectFile,
  extractRows,
  relevance,
  rowHash,
  splitLong,
  textQuality,
  toChatMessages,
  type RowContent,
} from '../src/datanets/ingest/index.ts';
import type { OpenLedgerError } from '../src/errors.ts';

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const bytes = (...values: number[]): Uint8Array => Uint8Array.from(values);

/** Asserts an OpenLedgerError with this code whose message matches. */
function failsWith(code: string, message?: RegExp) {
  return (error: OpenLedgerError) => {
    assert.equal(error.code, code, error.message);
    if (message) assert.match(error.message, message);
    return true;
  };
}

/** A deterministic pseudo-random generator (LCG), so generated texts are the same every run. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const VOCABULARY = (
  'river mountain harvest engine quantum ledger contract token wallet model adapter dataset ' +
  'curator validator paragraph sentence language neural network gradient matrix vector ' +
  'protocol consensus block chain signature proof reward stake market price volume trade ' +
  'garden flower season winter summer autumn spring forest ocean island desert valley city ' +
  'village bridge tunnel railway station airport harbor castle temple museum library school ' +
  'student teacher lesson exam report journal article chapter novel poem story author reader ' +
  'doctor patient clinic symptom diagnosis treatment medicine therapy surgery vaccine virus ' +
  'protein enzyme cell tissue organ muscle bone nerve brain heart lung liver kidney blood'
).split(' ');

function paragraph(rnd: () => number, words: number): string {
  return Array.from({ length: words }, () => VOCABULARY[Math.floor(rnd() * VOCABULARY.length)]!)
    .join(' ')
    .replace(/^\w/, (c) => c.toUpperCase())
    .concat('.');
}

async function makePdf(pages: string[][], title?: string): Promise<Uint8Array> {
  const pdf = await PDFDocument.create();
  if (title) pdf.setTitle(title);
  pdf.setCreationDate(new Date(Date.UTC(2025, 0, 1)));
  pdf.setModificationDate(new Date(Date.UTC(2025, 0, 1)));
  const font = await pdf.embedFont(StandardFonts.Helvetica);
  for (const paragraphs of pages) {
    const page = pdf.addPage([600, 800]);
    let y = 740;
    for (const lines of paragraphs) {
      for (const line of lines.split('\n')) {
        page.drawText(line, { x: 50, y, size: 12, font });
        y -= 15;
      }
      y -= 25; // paragraph gap
    }
  }
  return pdf.save({ useObjectStreams: false });
}

async function makeDocx(paragraphs: string[]): Promise<Uint8Array> {
  // docx stamps the current time into the file: freeze the clock so the bytes are reproducible.
  mock.timers.enable({ apis: ['Date'], now: Date.UTC(2025, 0, 1) });
  try {
    const document = new Document({
      creator: 'openledger-test',
      sections: [{ children: paragraphs.map((text) => new Paragraph(text)) }],
    });
    return new Uint8Array(await Packer.toBuffer(document));
  } finally {
    mock.timers.reset();
  }
}

const PNG = bytes(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13);
const JPEG = bytes(0xff, 0xd8, 0xff, 0xe0, 0, 16, 0x4a, 0x46, 0x49, 0x46);
const riff = (type: string) => utf8(`RIFF\u0024\u0000\u0000\u0000${type}fmt `);

describe('detectFile', () => {
  it('recognises every accepted kind by extension and content', async () => {
    const cases: [string, Uint8Array, string, string, string][] = [
      ['notes.txt', utf8('plain text\n'), 'txt', 'text', 'text/plain'],
      ['README.MD', utf8('# Title\n\nBody'), 'md', 'text', 'text/markdown'],
      ['data.json', utf8('[{"text":"x"}]'), 'json', 'text', 'application/json'],
      ['data.jsonl', utf8('{"text":"x"}\n'), 'jsonl', 'text', 'application/jsonl'],
      ['data.csv', utf8('text\nhello\n'), 'csv', 'text', 'text/csv'],
      ['paper.pdf', await makePdf([['Hello PDF']]), 'pdf', 'text', 'application/pdf'],
      [
        'report.docx',
        await makeDocx(['Hello DOCX']),
        'docx',
        'text',
        'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
      ],
      ['photo.png', PNG, 'image', 'image', 'image/png'],
      ['photo.jpeg', JPEG, 'image', 'image', 'image/jpeg'],
      ['anim.gif', utf8('GIF89a\u0001\u0000'), 'image', 'image', 'image/gif'],
      ['photo.webp', riff('WEBPVP8 '), 'image', 'image', 'image/webp'],
      ['voice.wav', riff('WAVE'), 'audio', 'audio', 'audio/wav'],
      ['song.mp3', utf8('ID3\u0004\u0000'), 'audio', 'audio', 'audio/mpeg'],
      ['frame.mp3', bytes(0xff, 0xfb, 0x90, 0x64), 'audio', 'audio', 'audio/mpeg'],
      ['voice.ogg', utf8('OggS\u0000\u0002'), 'audio', 'audio', 'audio/ogg'],
      ['voice.flac', utf8('fLaC\u0000'), 'audio', 'audio', 'audio/flac'],
    ];
    for (const [name, content, kind, modality, mime] of cases) {
      assert.deepEqual(detectFile(name, content), { kind, modality, mime }, name);
    }
  });

  it('takes an image mime type from the content, whatever the image extension says', () => {
    assert.deepEqual(detectFile('photo.png', JPEG), {
      kind: 'image',
      modality: 'image',
      mime: 'image/jpeg',
    });
  });

  it('refuses content that does not match the extension, naming both', async () => {
    const pdf = await makePdf([['Hello']]);
    assert.throws(
      () => detectFile('paper.pdf', utf8('just some text')),
      failsWith('FILE_INVALID', /\.pdf extension but its content is text without a %PDF- header/),
    );
    assert.throws(
      () => detectFile('photo.png', utf8('not an image at all')),
      failsWith('FILE_INVALID', /\.png extension but its content is text, not an image/),
    );
    assert.throws(
      () => detectFile('notes.txt', pdf),
      failsWith('FILE_INVALID', /\.txt extension but its content is a PDF document/),
    );
    assert.throws(
      () => detectFile('voice.wav', PNG),
      failsWith('FILE_INVALID', /\.wav extension but its content is a PNG image, not audio/),
    );
    assert.throws(
      () => detectFile('photo.jpg', riff('WAVE')),
      failsWith('FILE_INVALID', /WAV audio, not an image/),
    );
    assert.throws(
      () => detectFile('report.docx', pdf),
      failsWith('FILE_INVALID', /a PDF document, not a Word/),
    );
    assert.throws(
      () => detectFile('legacy.docx', bytes(0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1, 0)),
      failsWith('FILE_INVALID', /legacy Word \.doc/),
    );
    // A ZIP that is not a Word document: a DOCX with its main part renamed.
    const docx = Buffer.from(await makeDocx(['x']));
    const renamed = Buffer.from(
      docx.toString('latin1').replaceAll('word/document.xml', 'word/documenX.xml'),
      'latin1',
    );
    assert.throws(
      () => detectFile('report.docx', renamed),
      failsWith('FILE_INVALID', /ZIP archive without word\/document\.xml/),
    );
  });

  it('refuses an unknown or missing extension, listing the accepted ones', () => {
    assert.throws(
      () => detectFile('setup.exe', bytes(0x4d, 0x5a)),
      failsWith(
        'UNSUPPORTED_FILE_TYPE',
        /\(\.exe\).*Accepted: .*\.txt.*\.pdf.*\.docx.*\.jsonl.*\.png.*\.flac/,
      ),
    );
    assert.throws(
      () => detectFile('Makefile', utf8('all:')),
      failsWith('UNSUPPORTED_FILE_TYPE', /no extension/),
    );
  });

  it('refuses text files that are not UTF-8 text, and empty files', () => {
    assert.throws(
      () => detectFile('latin1.txt', bytes(0x63, 0x61, 0x66, 0xe9, 0x0a)),
      failsWith('FILE_INVALID', /latin1\.txt.*not valid UTF-8.*offset 3 \(line 1\)/),
    );
    assert.throws(
      () => detectFile('utf16.csv', bytes(0xff, 0xfe, 0x61, 0x00)),
      failsWith('FILE_INVALID', /UTF-16/),
    );
    assert.throws(
      () => detectFile('binary.json', bytes(0x7b, 0x00, 0x7d)),
      failsWith('FILE_INVALID', /NUL byte/),
    );
    assert.throws(
      () => detectFile('empty.md', new Uint8Array(0)),
      failsWith('FILE_INVALID', /empty/),
    );
    // Text that happens to start like a binary signature is still text; a UTF-8 BOM is fine.
    assert.equal(detectFile('tags.txt', utf8('ID3 tags hold the title of an MP3.')).kind, 'txt');
    assert.equal(detectFile('bom.txt', bytes(0xef, 0xbb, 0xbf, 0x68, 0x69)).kind, 'txt');
  });
});

describe('extractRows: documents', () => {
  it('turns a text file into document rows at paragraph boundaries, with their lines', async () => {
    const text = 'First paragraph,\nstill first.\r\n\r\nSecond paragraph.\n\n\n\nThird.\n';
    const rows = await extractRows('txt', utf8(text), { maxRowChars: 30 });
    assert.deepEqual(
      rows.map((row) => [row.content, row.source]),
      [
        [
          { type: 'document', text: 'First paragraph,\nstill first.' },
          { index: 0, line: 1 },
        ],
        [
          { type: 'document', text: 'Second paragraph.\n\nThird.' },
          { index: 1, line: 4 },
        ],
      ],
    );
    for (const row of rows) {
      assert.equal(row.text, (row.content as { text: string }).text);
      assert.equal(row.hash, rowHash(row.content));
    }
  });

  it('keeps Markdown code fences whole and titles rows with their heading', async () => {
    const md = [
      '# Setup',
      'Install the node.',
      '',
      '```sh',
      'npm install',
      '',
      'npm start',
      '```',
      '## Usage',
      'Run it.',
    ].join('\n');
    const rows = await extractRows('md', utf8(md), { maxRowChars: 45 });
    assert.deepEqual(
      rows.map((row) => [row.content, row.source.line]),
      [
        [{ type: 'document', text: '# Setup\nInstall the node.', title: 'Setup' }, 1],
        [{ type: 'document', text: '```sh\nnpm install\n\nnpm start\n```', title: 'Setup' }, 4],
        [{ type: 'document', text: '## Usage\nRun it.', title: 'Usage' }, 9],
      ],
    );
  });

  it('reads the text of a PDF page by page, paragraph by paragraph', async () => {
    const pdf = await makePdf(
      [
        ['The first paragraph starts here\nand wraps onto a second line.', 'A second paragraph.'],
        ['Page two, café.'],
      ],
      'Field Notes',
    );
    const rows = await extractRows('pdf', pdf, { maxRowChars: 70 });
    assert.deepEqual(
      rows.map((row) => [row.content, row.source]),
      [
        [
          {
            type: 'document',
            text: 'The first paragraph starts here and wraps onto a second line.',
            title: 'Field Notes',
          },
          { index: 0, page: 1 },
        ],
        [
          { type: 'document', text: 'A second paragraph.', title: 'Field Notes' },
          { index: 1, page: 1 },
        ],
        [
          { type: 'document', text: 'Page two, café.', title: 'Field Notes' },
          { index: 2, page: 2 },
        ],
      ],
    );
  });

  it('refuses a PDF that cannot be read, or has no text', async () => {
    await assert.rejects(
      extractRows('pdf', utf8('%PDF-1.7\nthis is not really a pdf')),
      failsWith('FILE_INVALID', /PDF cannot be read/),
    );
    const blank = await PDFDocument.create();
    blank.addPage();
    await assert.rejects(
      extractRows('pdf', await blank.save()),
      failsWith('FILE_INVALID', /no text.*/),
    );
  });

  it('reads the paragraphs of a DOCX', async () => {
    const docx = await makeDocx(['Hello from Word.', 'A second paragraph.', 'A third one.']);
    assert.equal(
      createHash('sha256').update(docx).digest('hex'),
      createHash('sha256')
        .update(await makeDocx(['Hello from Word.', 'A second paragraph.', 'A third one.']))
        .digest('hex'),
      'the generated DOCX is reproducible',
    );
    const rows = await extractRows('docx', docx, { maxRowChars: 40 });
    assert.deepEqual(
      rows.map((row) => [row.content, row.source]),
      [
        [{ type: 'document', text: 'Hello from Word.\n\nA second paragraph.' }, { index: 0 }],
        [{ type: 'document', text: 'A third one.' }, { index: 1 }],
      ],
    );
    await assert.rejects(
      extractRows('docx', docx, { maxUnpackedBytes: 100 }),
      failsWith('PAYLOAD_TOO_LARGE', /unpacks to/),
    );
    await assert.rejects(extractRows('docx', utf8('PK not a zip')), failsWith('FILE_INVALID'));
  });

  it('splits long documents: no chunk over the limit, no word cut, nothing lost, deterministic', async () => {
    const rnd = random(7);
    const paragraphs: string[] = [];
    for (let i = 0; i < 120; i++) paragraphs.push(paragraph(rnd, 5 + Math.floor(rnd() * 150)));
    paragraphs.splice(40, 0, paragraph(rnd, 2000)); // one paragraph far over the limit
    const text = paragraphs.join('\n\n');
    const maxRowChars = 1000;
    const rows = await extractRows('txt', utf8(text), { maxRowChars });
    assert.ok(rows.length > 20);
    const chunks = rows.map((row) => row.text);
    for (const chunk of chunks) assert.ok(chunk.length <= maxRowChars, `${chunk.length} chars`);
    // Every word of the document, in order, and no new ones: nothing split inside a word.
    assert.deepEqual(chunks.join(' ').split(/\s+/), text.split(/\s+/));
    // Rows stop at paragraph ends except inside the over-long paragraph.
    const ends = chunks.filter((chunk) => !chunk.endsWith('.'));
    assert.ok(
      ends.length <= Math.ceil(paragraphs[40]!.length / (maxRowChars / 2)),
      `${ends.length}`,
    );
    // Lines ascend and point at the row's first line.
    const lines = text.split('\n');
    let previous = 0;
    for (const row of rows) {
      const line = row.source.line!;
      assert.ok(line >= previous);
      assert.ok(lines[line - 1]!.includes(row.text.split('\n')[0]!), `row ${row.source.index}`);
      previous = line;
    }
    const again = await extractRows('txt', utf8(text), { maxRowChars });
    assert.deepEqual(again, rows);
  });

  it('cuts text without spaces at word boundaries and giant words as a last resort', () => {
    const chinese = '数据网络是社区贡献的数据集。每一行都可以追溯到它的贡献者。'.repeat(40);
    const pieces = splitLong(chinese, 100);
    for (const piece of pieces) assert.ok(piece.length <= 100);
    assert.equal(pieces.join(''), chinese);
    assert.ok(
      pieces.every((piece) => piece.endsWith('。')),
      'cut after sentences',
    );

    const url = `https://example.com/${'a'.repeat(250)}`;
    const cut = splitLong(`see ${url}`, 100);
    assert.ok(cut.every((piece) => piece.length <= 100));
    assert.equal(cut.join(''), `see${url}`);

    const emoji = '😀'.repeat(60); // 120 UTF-16 code units, no word boundaries
    const halves = splitLong(emoji, 51);
    assert.ok(halves.every((piece) => piece.length <= 51 && !/[\uD800-\uDBFF]$/.test(piece)));
    assert.equal(halves.join(''), emoji);
  });
});

describe('extractRows: records', () => {
  const alpaca = { instruction: 'Translate to French', input: 'Good morning', output: 'Bonjour' };
  const sharegpt = {
    conversations: [
      { from: 'system', value: 'Be brief.' },
      { from: 'human', value: 'Capital of Peru?' },
      { from: 'gpt', value: 'Lima.' },
    ],
  };
  const openai = {
    messages: [
      { role: 'user', content: 'What is 2 + 2?' },
      { role: 'assistant', content: [{ type: 'text', text: '4' }] },
    ],
  };
  const plain = { text: 'A plain document row.', title: 'Plain', id: 17 };

  it('auto-detects each record form, record by record', async () => {
    const jsonl = [alpaca, sharegpt, openai, plain]
      .map((record) => JSON.stringify(record))
      .join('\n');
    const rows = await extractRows('jsonl', utf8(`${jsonl}\n\n`));
    assert.deepEqual(
      rows.map((row) => row.content),
      [
        {
          type: 'instruction',
          instruction: 'Translate to French',
          input: 'Good morning',
          output: 'Bonjour',
        },
        {
          type: 'chat',
          messages: [
            { role: 'system', content: 'Be brief.' },
            { role: 'user', content: 'Capital of Peru?' },
            { role: 'assistant', content: 'Lima.' },
          ],
        },
        {
          type: 'chat',
          messages: [
            { role: 'user', content: 'What is 2 + 2?' },
            { role: 'assistant', content: '4' },
          ],
        },
        { type: 'document', text: 'A plain document row.', title: 'Plain' },
      ],
    );
    assert.deepEqual(
      rows.map((row) => row.source),
      [0, 1, 2, 3].map((i) => ({ index: i, record: i, line: i + 1 })),
    );
    assert.equal(rows[0]!.text, 'Translate to French\n\nGood morning\n\nBonjour');
    assert.equal(rows[1]!.text, 'Be brief.\n\nCapital of Peru?\n\nLima.');
  });

  it('reads a JSON array, with the line each record starts on', async () => {
    const json = JSON.stringify([alpaca, { ...alpaca, input: '' }, plain], null, 2);
    const rows = await extractRows('json', utf8(json));
    assert.deepEqual(
      rows.map((row) => row.source),
      [
        { index: 0, record: 0, line: 2 },
        { index: 1, record: 1, line: 7 },
        { index: 2, record: 2, line: 12 },
      ],
    );
    assert.deepEqual(rows[1]!.content, {
      type: 'instruction',
      instruction: 'Translate to French',
      output: 'Bonjour',
    });
    // One record on its own, and JSON Lines saved as .json.
    assert.equal((await extractRows('json', utf8(JSON.stringify(openai)))).length, 1);
    const lines = `${JSON.stringify(alpaca)}\n${JSON.stringify(plain)}\n`;
    assert.equal((await extractRows('json', utf8(lines))).length, 2);
  });

  it('reads CSV with instruction/input/output or text columns', async () => {
    const csv =
      '\uFEFFInstruction,input,output,source\n' +
      'Translate to French,Good morning,Bonjour,web\n' +
      '"Write a haiku, about rain",,"Soft rain on the roof\nthe gutter hums a low tune\nsleep comes like a tide",book\n' +
      'Say hi,,Hi,chat\n';
    const rows = await extractRows('csv', utf8(csv));
    assert.deepEqual(
      rows.map((row) => [row.content, row.source]),
      [
        [
          {
            type: 'instruction',
            instruction: 'Translate to French',
            input: 'Good morning',
            output: 'Bonjour',
          },
          { index: 0, record: 0, line: 2 },
        ],
        [
          {
            type: 'instruction',
            instruction: 'Write a haiku, about rain',
            output: 'Soft rain on the roof\nthe gutter hums a low tune\nsleep comes like a tide',
          },
          { index: 1, record: 1, line: 3 },
        ],
        [
          { type: 'instruction', instruction: 'Say hi', output: 'Hi' },
          { index: 2, record: 2, line: 6 },
        ],
      ],
    );
    const texts = await extractRows(
      'csv',
      utf8('text,title\nFirst document.,One\n\nSecond document.,\n'),
    );
    assert.deepEqual(
      texts.map((row) => [row.content, row.source.line]),
      [
        [{ type: 'document', text: 'First document.', title: 'One' }, 2],
        [{ type: 'document', text: 'Second document.' }, 4],
      ],
    );
  });

  it('names the line (or index) of a record in none of the forms', async () => {
    const jsonl = `${JSON.stringify(alpaca)}\n${JSON.stringify({ prompt: 'a', completion: 'b' })}\n`;
    await assert.rejects(
      extractRows('jsonl', utf8(jsonl)),
      failsWith(
        'FILE_INVALID',
        /record at line 2 is in none of the accepted forms \(its keys: prompt, completion\)/,
      ),
    );
    await assert.rejects(
      extractRows('json', utf8(JSON.stringify([alpaca, alpaca, 'just a string']))),
      failsWith('FILE_INVALID', /record at line 1 is a string, not a JSON object/),
    );
    const bad = {
      conversations: [
        { from: 'human', value: 'hi' },
        { from: 'tool', value: 'x' },
      ],
    };
    await assert.rejects(
      extractRows('jsonl', utf8(`\n${JSON.stringify(bad)}`)),
      (error: OpenLedgerError) => {
        assert.equal(error.code, 'FILE_INVALID');
        assert.match(error.message, /line 2 has conversations\[1\]\.from "tool", not one of/);
        assert.deepEqual(error.details, { record: 0, line: 2 });
        return true;
      },
    );
    await assert.rejects(
      extractRows('jsonl', utf8(JSON.stringify({ messages: [{ role: 'user', content: 'hi' }] }))),
      failsWith('FILE_INVALID', /no non-empty assistant message/),
    );
    await assert.rejects(
      extractRows('jsonl', utf8(JSON.stringify({ instruction: 'Do it', output: '   ' }))),
      failsWith('FILE_INVALID', /empty "output"/),
    );
    await assert.rejects(
      extractRows('csv', utf8('question,answer\na,b\n')),
      failsWith('FILE_INVALID', /neither instruction and output columns nor a text column/),
    );
    await assert.rejects(
      extractRows('csv', utf8('text\n"unterminated\n')),
      failsWith('FILE_INVALID', /CSV file is malformed/),
    );
  });

  it('names the line of malformed JSON', async () => {
    const jsonl = `${JSON.stringify(alpaca)}\n${JSON.stringify(plain)}\n{"text": "oops",}\n`;
    await assert.rejects(extractRows('jsonl', utf8(jsonl)), (error: OpenLedgerError) => {
      assert.equal(error.code, 'FILE_INVALID');
      assert.match(error.message, /^Line 3\b.*not valid JSON/);
      assert.equal((error.details as { line: number }).line, 3);
      return true;
    });
    await assert.rejects(
      extractRows('json', utf8('[\n  {"text": "a"},\n  {"text": "b"\n]')),
      failsWith('FILE_INVALID', /^Line 4\b.*not valid JSON/),
    );
  });

  it('refuses invalid UTF-8, empty files, and media files', async () => {
    await assert.rejects(
      extractRows('jsonl', bytes(0x7b, 0x22, 0x74, 0x22, 0x3a, 0x22, 0xc3, 0x28, 0x22, 0x7d)),
      failsWith('FILE_INVALID', /not valid UTF-8: the bytes at offset 6/),
    );
    await assert.rejects(
      extractRows('txt', bytes(0x61, 0xed, 0xa0, 0x80)),
      failsWith('FILE_INVALID', /offset 1/),
    );
    await assert.rejects(
      extractRows('txt', utf8(' \n\n \n')),
      failsWith('FILE_INVALID', /no text/),
    );
    await assert.rejects(extractRows('json', utf8('[]')), failsWith('FILE_INVALID', /no text/));
    await assert.rejects(extractRows('image', PNG), failsWith('UNSUPPORTED_FILE_TYPE'));
    await assert.rejects(
      extractRows('jsonl', utf8('{"text":"a"}\n{"text":"b"}\n{"text":"c"}'), { maxRows: 2 }),
      failsWith('PAYLOAD_TOO_LARGE'),
    );
  });

  it('cuts an over-long {text} record like a document, every piece pointing at the record', async () => {
    const rnd = random(3);
    const long = paragraph(rnd, 400);
    const rows = await extractRows(
      'jsonl',
      utf8(`{"text":"short"}\n${JSON.stringify({ text: long })}`),
      {
        maxRowChars: 500,
      },
    );
    assert.ok(rows.length > 3);
    assert.deepEqual(rows[1]!.source, { index: 1, record: 1, line: 2 });
    assert.deepEqual(rows.at(-1)!.source, { index: rows.length - 1, record: 1, line: 2 });
    assert.equal(
      rows
        .slice(1)
        .map((row) => row.text)
        .join(' '),
      long,
    );
  });
});

describe('toChatMessages', () => {
  it('normalises rows for training export', () => {
    assert.equal(toChatMessages({ type: 'document', text: 'x' }), null);
    assert.deepEqual(
      toChatMessages({
        type: 'instruction',
        instruction: 'Translate',
        input: 'Hello',
        output: 'Hola',
      }),
      [
        { role: 'user', content: 'Translate\n\nHello' },
        { role: 'assistant', content: 'Hola' },
      ],
    );
    assert.deepEqual(toChatMessages({ type: 'instruction', instruction: 'Say hi', output: 'Hi' }), [
      { role: 'user', content: 'Say hi' },
      { role: 'assistant', content: 'Hi' },
    ]);
    const messages = [
      { role: 'system' as const, content: 's' },
      { role: 'user' as const, content: 'u' },
      { role: 'assistant' as const, content: 'a' },
    ];
    assert.deepEqual(toChatMessages({ type: 'chat', messages }), messages);
  });
});

describe('rowHash and canonicalJson', () => {
  it('hashes the RFC 8785 canonical JSON of the content', () => {
    const content: RowContent = { type: 'instruction', instruction: 'a', output: 'b' };
    const canonical = '{"instruction":"a","output":"b","type":"instruction"}';
    assert.equal(canonicalJson(content), canonical);
    const expected = createHash('sha256').update(canonical).digest('hex');
    assert.equal(rowHash(content), expected);
    assert.match(rowHash(content), /^[0-9a-f]{64}$/);
    // Pinned: a change here changes every stored row hash and Merkle root.
    assert.equal(
      rowHash({ type: 'document', text: 'Hello, world.' }),
      createHash('sha256').update('{"text":"Hello, world.","type":"document"}').digest('hex'),
    );
  });

  it('does not depend on key order, and does depend on the content', () => {
    const a = rowHash({ type: 'instruction', instruction: 'x', input: 'y', output: 'z' });
    const b = rowHash(
      JSON.parse('{"output":"z","input":"y","type":"instruction","instruction":"x"}'),
    );
    assert.equal(a, b);
    assert.notEqual(a, rowHash({ type: 'instruction', instruction: 'x', input: 'y', output: 'Z' }));
    const chat = (first: string): RowContent => ({
      type: 'chat',
      messages: [
        { role: 'user', content: first },
        { role: 'assistant', content: 'ok' },
      ],
    });
    assert.notEqual(rowHash(chat('a')), rowHash(chat('b')));
  });

  it('canonicalises numbers, unicode and nesting as RFC 8785 says', () => {
    assert.equal(
      canonicalJson({ b: [1e21, 0.1, -0], a: { d: null, c: true } }),
      '{"a":{"c":true,"d":null},"b":[1e+21,0.1,0]}',
    );
    assert.equal(canonicalJson({ é: 1, e: 2, '\u20ac': 3 }), '{"e":2,"é":1,"€":3}');
    assert.equal(canonicalJson('line\nbreak'), '"line\\nbreak"');
    assert.throws(() => canonicalJson({ x: Number.NaN }), failsWith('BAD_REQUEST'));
    assert.throws(() => canonicalJson(undefined), failsWith('BAD_REQUEST'));
  });
});

describe('textQuality', () => {
  it('scores clean text 1 with no reasons', () => {
    assert.deepEqual(
      textQuality('The validator checks each row for encoding problems before it is accepted.'),
      { score: 1, reasons: [] },
    );
  });

  it('gives a reason for each problem', () => {
    const cases: [string, RegExp][] = [
      ['', /^empty$/],
      ['   \n\t ', /^empty$/],
      ['Too short.', /^too short \(10 chars\)$/],
      [
        'The r\uFFFDsum\uFFFD was saved with the wrong encoding by the editor.',
        /garbled encoding \(2 replacement characters\)/,
      ],
      [
        'Plain text with a stray\u0007bell and\u0000null characters inside it.',
        /garbled encoding \(2 control characters\)/,
      ],
      ['Le cafÃ© Ã©tait fermÃ© pour la journÃ©e, dommage.', /mojibake \(4 sequences/],
      ['It doesnâ€™t look right when â€œquotesâ€\u009d break.', /mojibake/],
      ['12345 67890 12345 67890 ### --- +++ 000 999 ... !!!', /few letters/],
      [
        Array.from({ length: 10 }, () => 'Buy cheap tokens now!').join('\n'),
        /repetitive \(90% of lines repeated\)/,
      ],
      [
        'spam eggs spam eggs spam eggs spam eggs spam eggs spam eggs spam eggs spam eggs',
        /repetitive \(\d+% of word 3-grams repeated\)/,
      ],
    ];
    for (const [text, reason] of cases) {
      const { score, reasons } = textQuality(text);
      assert.ok(
        reasons.some((r) => reason.test(r)),
        `${JSON.stringify(text)}: ${reasons.join('; ')}`,
      );
      assert.ok(score < 1 && score >= 0, `${JSON.stringify(text)} scored ${score}`);
    }
    assert.equal(textQuality('').score, 0);
    // Accents, other scripts and curly quotes are not problems.
    assert.deepEqual(
      textQuality('Le café était fermé pour la journée — “dommage”, dit-elle.').reasons,
      [],
    );
    assert.deepEqual(textQuality('Москва — столица России, крупнейший город страны.').reasons, []);
  });
});

describe('MinHashIndex', () => {
  const rnd = random(42);
  const base = paragraph(rnd, 250);

  function perturb(text: string, changes: number, seed: number): string {
    const r = random(seed);
    const words = text.split(' ');
    for (let i = 0; i < changes; i++) {
      words[1 + Math.floor(r() * (words.length - 2))] = `changed${Math.floor(r() * 1e6)}`;
    }
    return words.join(' ');
  }

  it('finds a paragraph with a few words changed, and scores identical text 1', () => {
    const index = new MinHashIndex();
    index.add('original', index.signature(base));
    index.add('other', index.signature(paragraph(rnd, 250)));
    const near = index.query(index.signature(perturb(base, 3, 1)));
    assert.equal(near.length, 1);
    assert.equal(near[0]!.id, 'original');
    assert.ok(near[0]!.similarity > 0.8, `${near[0]!.similarity}`);
    // Case, punctuation and spacing do not matter.
    const same = index.query(index.signature(`  ${base.toUpperCase().replaceAll(' ', ' ,  ')} `));
    assert.deepEqual(same, [{ id: 'original', similarity: 1 }]);
  });

  it('does not match unrelated texts', () => {
    const index = new MinHashIndex();
    index.add('a', index.signature(base));
    const unrelated = paragraph(rnd, 250);
    assert.deepEqual(index.query(index.signature(unrelated)), []);
    assert.ok(MinHashIndex.similarity(index.signature(base), index.signature(unrelated)) < 0.1);
    assert.deepEqual(index.query(index.signature('The weather is nice today in Lisbon.'), 0.1), []);
  });

  it('keeps LSH candidates only at or over the threshold', () => {
    const index = new MinHashIndex({ shingleSize: 5 });
    index.add('a', index.signature(base));
    const halfway = index.signature(perturb(base, 12, 77)); // Jaccard about 0.6
    const similarity = MinHashIndex.similarity(index.signature(base), halfway);
    assert.ok(similarity > 0.4 && similarity < 0.75, `${similarity}`);
    assert.deepEqual(index.query(halfway), []);
    assert.deepEqual(index.query(halfway, 0.3), [{ id: 'a', similarity }]);
  });

  it('estimates the Jaccard similarity of the shingle sets', () => {
    const index = new MinHashIndex();
    for (const changes of [0, 5, 15, 40]) {
      const other = perturb(base, changes, changes + 10);
      const a = new Set(index.shingles(base));
      const b = new Set(index.shingles(other));
      const shared = [...a].filter((x) => b.has(x)).length;
      const jaccard = shared / (a.size + b.size - shared);
      const estimate = MinHashIndex.similarity(index.signature(base), index.signature(other));
      assert.ok(Math.abs(estimate - jaccard) < 0.15, `${changes}: ${estimate} vs ${jaccard}`);
    }
  });

  it('is deterministic, and round-trips signatures through encode/decode', () => {
    const signature = new MinHashIndex().signature(base);
    assert.deepEqual(new MinHashIndex().signature(base), signature);
    assert.equal(signature.length, 128);
    const encoded = MinHashIndex.encode(signature);
    assert.match(encoded, /^[A-Za-z0-9+/]+=*$/);
    assert.equal(Buffer.from(encoded, 'base64').length, 512);
    assert.deepEqual(MinHashIndex.decode(encoded), signature);
    // Rebuilt from stored signatures, the index answers the same.
    const index = new MinHashIndex();
    index.add('x', MinHashIndex.decode(encoded));
    assert.deepEqual(index.query(signature), [{ id: 'x', similarity: 1 }]);
    assert.throws(() => MinHashIndex.decode('not base64!'), failsWith('BAD_REQUEST'));
    assert.throws(() => MinHashIndex.decode('AAA='), failsWith('BAD_REQUEST'));
    assert.throws(() => index.add('y', new Uint32Array(64)), failsWith('BAD_REQUEST'));
    assert.throws(() => index.add('x', signature), failsWith('CONFLICT'));
    assert.throws(() => new MinHashIndex({ numPerm: 100, bands: 32 }), failsWith('BAD_REQUEST'));
  });

  it('never matches text without words', () => {
    const index = new MinHashIndex({ numPerm: 64, bands: 16 });
    index.add('empty', index.signature('  ...  '));
    assert.deepEqual(index.query(index.signature('')), []);
    index.add('short', index.signature('Three short words'));
    assert.deepEqual(index.query(index.signature('three, SHORT words!')), [
      { id: 'short', similarity: 1 },
    ]);
  });

  it('finds planted near-duplicates with precision and recall >= 0.9', () => {
    const r = random(2024);
    const originals = Array.from({ length: 200 }, () => paragraph(r, 150 + Math.floor(r() * 150)));
    const planted = new Map<string, string>(); // copy id -> original id
    const texts = new Map<string, string>(originals.map((text, i) => [`o${i}`, text]));
    for (let k = 0; k < 20; k++) {
      const source = k * 10 + 3;
      texts.set(`p${k}`, perturb(originals[source]!, 1 + (k % 3), 500 + k));
      planted.set(`p${k}`, `o${source}`);
    }
    const index = new MinHashIndex();
    const signatures = new Map([...texts].map(([id, text]) => [id, index.signature(text)]));
    for (const [id, signature] of signatures) index.add(id, signature);
    let truePositives = 0;
    let falsePositives = 0;
    for (const [id, signature] of signatures) {
      for (const match of index.query(signature)) {
        if (match.id === id) continue;
        if (planted.get(id) === match.id || planted.get(match.id) === id) truePositives++;
        else falsePositives++;
      }
    }
    // Each planted pair is found from both sides.
    const recall = truePositives / (2 * planted.size);
    const precision = truePositives / Math.max(1, truePositives + falsePositives);
    assert.ok(recall >= 0.9, `recall ${recall}`);
    assert.ok(precision >= 0.9, `precision ${precision}`);
  });
});

describe('relevance', () => {
  const description =
    'Medical question answering: patient questions about symptoms, diagnosis, treatment and ' +
    'medication, answered by doctors. Tags: medicine health clinical';

  it('is higher for on-topic text than for off-topic text', () => {
    const onTopic =
      'What are the symptoms of influenza? Fever, cough and muscle aches are common symptoms; ' +
      'treatment is rest, fluids and sometimes antiviral medication prescribed by a doctor.';
    const offTopic =
      'The quarterly earnings report shows revenue growth in the retail segment and lower ' +
      'operating margins across European stores.';
    const on = relevance(onTopic, description);
    const off = relevance(offTopic, description);
    assert.ok(on > 0.1, `on-topic ${on}`);
    assert.ok(off < 0.02, `off-topic ${off}`);
    assert.ok(on > off);
  });

  it('stays in [0, 1] and treats stop words and plurals sensibly', () => {
    assert.equal(relevance('the and of it', description), 0);
    assert.equal(relevance('', description), 0);
    const self = relevance(description, description);
    assert.ok(self > 0.999 && self <= 1, `${self}`);
    assert.ok(relevance('Symptom diagnoses for patients', 'symptoms diagnosis patient') > 0.5);
  });
});

describe('assessRow', () => {
  const description =
    'A datanet of cooking recipes: ingredients, preparation steps, baking times and kitchen tips ' +
    'for home cooks. Tags: food recipes baking';
  const recipe =
    'Preheat the oven to 180 degrees. Mix flour, sugar and butter, add the eggs, and bake the ' +
    'batter for 35 minutes until golden. Baking tip: let the cake cool before slicing.';

  it('accepts a clean, on-topic row', () => {
    const verdict = assessRow({ text: recipe, description });
    assert.equal(verdict.accepted, true);
    assert.deepEqual(verdict.reasons, []);
    assert.ok(verdict.score > 0.95, `${verdict.score}`);
    assert.ok(verdict.relevance > 0.05);
  });

  it('marks an off-topic row, lowers its score, and rejects it only when the description can judge', () => {
    const text =
      'The quarterly earnings report shows revenue growth in the retail segment this year.';
    const verdict = assessRow({ text, description });
    assert.equal(verdict.accepted, false);
    assert.ok(verdict.reasons.includes('off-topic (relevance 0.00)'), verdict.reasons.join('; '));
    assert.ok(verdict.score < 0.85 && verdict.score >= 0.75, `${verdict.score}`);
    const short = assessRow({ text, description: 'Cooking recipes' });
    assert.equal(short.accepted, true, 'a two-word description is too short to reject by');
    assert.ok(short.reasons.some((reason) => reason.startsWith('off-topic')));
    // Lightly weighted: a somewhat related row is not off-topic.
    const related = assessRow({
      text: 'Add sugar to the batter and bake it for twenty minutes.',
      description,
    });
    assert.equal(related.accepted, true, related.reasons.join('; '));
  });

  it('rejects duplicates and poor text, with reasons', () => {
    const exact = assessRow({ text: recipe, description, exactDuplicateOf: 'row-1' });
    assert.deepEqual([exact.accepted, exact.score], [false, 0]);
    assert.ok(exact.reasons.includes('exact duplicate of row-1'));
    const near = assessRow({
      text: recipe,
      description,
      nearDuplicateOf: { id: 'row-2', similarity: 0.91 },
    });
    assert.equal(near.accepted, false);
    assert.ok(near.reasons.includes('near-duplicate of row-2 (similarity 0.91)'));
    assert.ok(near.score < 0.1, `${near.score}`);
    const garbled = assessRow({
      text: `Bake the cake at 180\uFFFD for 35 minut\uFFFDs, recipe.`,
      description,
    });
    assert.equal(garbled.accepted, false);
    assert.ok(garbled.reasons.some((reason) => reason.startsWith('garbled encoding')));
    const empty = assessRow({ text: '  ', description });
    assert.deepEqual([empty.accepted, empty.score, empty.reasons[0]], [false, 0, 'empty']);
  });
});
