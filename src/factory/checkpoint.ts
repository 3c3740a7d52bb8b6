/**
 * Training checkpoints: the step, what is trained (the adapter's A and B) and AdamW's moments,
 * in one buffer:
 *
 *     u32 LE header length | header JSON | padding to 4 | f32 LE values (param, m, v per parameter)
 */
import { OpenLedgerError } from '../errors.ts';
import type { Trainer } from '../engine/index.ts';

const FORMAT = 'openledger.lora-checkpoint';

interface Header {
  format: typeof FORMAT;
  formatVersion: 1;
  step: number;
  t: number;
  names: string[];
  sizes: number[];
}

export function encodeCheckpoint(trainer: Trainer): Uint8Array {
  const params = trainer.network.parameters();
  const header: Header = {
    format: FORMAT,
    formatVersion: 1,
    step: trainer.step,
    t: trainer.optimizer.t,
    names: params.map((p) => p.name),
    sizes: params.map((p) => p.value.length),
  };
  const json = new TextEncoder().encode(JSON.stringify(header));
  const start = 4 + Math.ceil(json.length / 4) * 4;
  const total = params.reduce((n, p) => n + 3 * p.value.length, 0);
  const bytes = new Uint8Array(start + 4 * total);
  new DataView(bytes.buffer).setUint32(0, json.length, true);
  bytes.set(json, 4);
  const floats = new Float32Array(bytes.buffer, start, total);
  let offset = 0;
  params.forEach((p, i) => {
    for (const array of [p.value, trainer.optimizer.m[i]!, trainer.optimizer.v[i]!]) {
      floats.set(array, offset);
      offset += array.length;
    }
  });
  return bytes;
}

/** Restores a checkpoint into a trainer built with the same adapter shape; answers the step. */
export function restoreCheckpoint(trainer: Trainer, input: Uint8Array): number {
  const bad = (why: string): never => {
    throw new OpenLedgerError('VALIDATION_FAILED', `The training checkpoint is unusable: ${why}.`);
  };
  const bytes = new Uint8Array(input); // own, aligned copy
  if (bytes.length < 4) bad('it is truncated');
  const length = new DataView(bytes.buffer).getUint32(0, true);
  let header: Header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(4, 4 + length))) as Header;
  } catch {
    return bad('its header is not JSON');
  }
  if (header.format !== FORMAT || header.formatVersion !== 1) bad('unknown format');
  const params = trainer.network.parameters();
  if (
    header.names.length !== params.length ||
    params.some((p, i) => p.name !== header.names[i] || p.value.length !== header.sizes[i])
  )
    bad('its adapter has another shape');
  const start = 4 + Math.ceil(length / 4) * 4;
  const total = params.reduce((n, p) => n + 3 * p.value.length, 0);
  if (bytes.length !== start + 4 * total) bad('its size does not match its header');
  const floats = new Float32Array(bytes.buffer, start, total);
  let offset = 0;
  params.forEach((p, i) => {
    for (const array of [p.value, trainer.optimizer.m[i]!, trainer.optimizer.v[i]!]) {
      array.set(floats.subarray(offset, offset + array.length));
      offset += array.length;
    }
  });
  trainer.step = header.step;
  trainer.optimizer.t = header.t;
  return header.step;
}
