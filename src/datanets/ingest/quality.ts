export interface QualityResult {
  /** 1 for clean text, lower for each problem found, 0 for nothing at all. */
  score: number;
  reasons: string[];
}

export const MIN_TEXT_CHARS = 20;

/** Each problem multiplies the score by its factor, so reasons compound and stay explainable. */
const PENALTY = {
  tooShort: 0.6,
  lowLetters: 0.6,
  garbled: 0.3,
  mojibake: 0.4,
  repetitive: 0.4,
} as const;

// U+FFFD is what a decoder leaves for bytes it could not read.
const REPLACEMENT = /\uFFFD/g;
// C0 controls other than tab, LF and CR; DEL; C1 controls. Text files never need them.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F-\u009F]/g;
// UTF-8 read as Windows-1252 or Latin-1: a lead byte shown as Â..ß or â followed by what a
// continuation byte (0x80..0xBF) becomes in those encodings ("Ã©" for "é", "â€™" for "’").
const CONTINUATION =
  '\\u00A0-\\u00BF\\u0152\\u0153\\u0160\\u0161\\u0178\\u017D\\u017E\\u0192\\u02C6\\u02DC' +
  '\\u2013\\u2014\\u2018-\\u201A\\u201C-\\u201E\\u2020-\\u2022\\u2026\\u2030\\u2039\\u203A\\u20AC\\u2122';
const MOJIBAKE = new RegExp(`[\\u00C2-\\u00DF][${CONTINUATION}]|\\u00E2[${CONTINUATION}]{2}`, 'g');
const LETTER = /\p{L}/gu;
const NON_SPACE = /\S/gu;

function count(text: string, pattern: RegExp): number {
  pattern.lastIndex = 0;
  let n = 0;
  while (pattern.exec(text) !== null) n++;
  return n;
}

const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

/**
 * Heuristic quality of a row's text, with a reason for each problem found: empty, too short,
 * garbled encoding (U+FFFD, control characters), mojibake ("Ã©"), few letters, repetition (the same
 * line again and again, or the same few words over and over).
 */
export function textQuality(text: string): QualityResult {
  const trimmed = text.trim();
  if (trimmed === '') return { score: 0, reasons: ['empty'] };
  const reasons: string[] = [];
  let score = 1;
  const penalise = (factor: number, reason: string) => {
    score *= factor;
    reasons.push(reason);
  };

  const chars = [...trimmed].length;
  if (chars < MIN_TEXT_CHARS) penalise(PENALTY.tooShort, `too short (${chars} chars)`);

  const replacement = count(trimmed, REPLACEMENT);
  const control = count(trimmed, CONTROL);
  if (replacement > 0 || control > 0) {
    const parts = [
      replacement > 0 ? `${replacement} replacement character${replacement === 1 ? '' : 's'}` : '',
      control > 0 ? `${control} control character${control === 1 ? '' : 's'}` : '',
    ].filter(Boolean);
    penalise(PENALTY.garbled, `garbled encoding (${parts.join(', ')})`);
  }

  const mojibake = count(trimmed, MOJIBAKE);
  if (mojibake > 0) penalise(PENALTY.mojibake, `mojibake (${mojibake} sequences like "Ã©")`);

  const visible = count(trimmed, NON_SPACE);
  const letters = count(trimmed, LETTER);
  const letterRatio = visible === 0 ? 0 : letters / visible;
  if (visible >= 10 && letterRatio < 0.4) {
    penalise(PENALTY.lowLetters, `few letters (${round(letterRatio)} of characters)`);
  }

  const repetition = repetitionOf(trimmed);
  if (repetition !== undefined) penalise(PENALTY.repetitive, repetition);

  return { score: round(score, 4), reasons };
}

/** A reason when the text repeats itself: duplicated lines, or a few word 3-grams over and over. */
function repetitionOf(text: string): string | undefined {
  const lines = text
    .split('\n')
    .map((line) => line.trim().toLowerCase())
    .filter((line) => line !== '');
  if (lines.length >= 4) {
    const seen = new Set<string>();
    let repeated = 0;
    for (const line of lines) {
      if (seen.has(line)) repeated++;
      else seen.add(line);
    }
    if (repeated / lines.length >= 0.3) {
      return `repetitive (${Math.round((100 * repeated) / lines.length)}% of lines repeated)`;
    }
  }
  const words = text.toLowerCase().match(/[\p{L}\p{N}]+/gu) ?? [];
  if (words.length >= 12) {
    const grams = new Set<string>();
    const total = words.length - 2;
    for (let i = 0; i < total; i++) grams.add(`${words[i]} ${words[i + 1]} ${words[i + 2]}`);
    const repeated = 1 - grams.size / total;
    if (repeated >= 0.5) {
      return `repetitive (${Math.round(100 * repeated)}% of word 3-grams repeated)`;
    }
  }
  return undefined;
}
