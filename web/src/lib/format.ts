import { formatUnits } from 'viem';

export function shortAddress(address: string): string {
  return address.length > 12 ? `${address.slice(0, 6)}…${address.slice(-4)}` : address;
}

/** Formats a wei string as a grouped decimal with at most `maxFraction` fraction digits. */
export function formatToken(wei: string, decimals = 18, maxFraction = 4): string {
  let value: bigint;
  try {
    value = BigInt(wei);
  } catch {
    return wei;
  }
  const [whole, fraction = ''] = formatUnits(value, decimals).split('.');
  const negative = whole!.startsWith('-');
  const digits = negative ? whole!.slice(1) : whole!;
  const grouped = digits.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  const frac = fraction.slice(0, maxFraction).replace(/0+$/, '');
  const tiny = value !== 0n && digits === '0' && frac === '';
  if (tiny) return `${negative ? '>-' : '<'}0.${'0'.repeat(maxFraction - 1)}1`;
  return `${negative ? '-' : ''}${grouped}${frac ? `.${frac}` : ''}`;
}

export function formatDuration(totalSeconds: number): string {
  const s = Math.max(0, Math.floor(totalSeconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${m}m`;
  if (m > 0) return `${m}m ${s % 60}s`;
  return `${s}s`;
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export function formatDate(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : dateFormat.format(d);
}

/** A chain time (Unix seconds) as a date and time. */
export function formatUnixTime(seconds: number): string {
  return formatDate(new Date(seconds * 1000).toISOString());
}
