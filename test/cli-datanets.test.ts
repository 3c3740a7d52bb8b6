// Tests read arbitrary JSON answers and assert on their fields: `any` is the honest type here.
/* eslint-disable @typescript-eslint/no-explicit-any */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startTestNode, type TestNode } from './helpers/node.ts';
import { CLI_ENTRY } from './helpers/cli.ts';

const BIN = CLI_ENTRY;

/** Runs `openledger <args> --json --url <node>` and parses what it printed. */
function cli(
  url: string,
  args: string[],
): Promise<{ code: number | null; json: any; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, ...args, '--json', '--url', url], {
      env: { ...process.env, OPENLEDGER_API_KEY: '', OPENLEDGER_PRIVATE_KEY: '' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('exit', (code) => {
      const text = code === 0 ? stdout : stderr;
      let json: unknown;
      try {
        json = JSON.parse(text.trim().split('\n').pop() ?? '');
      } catch {
        json = undefined;
      }
      resolve({ code, json, stderr });
    });
  });
}

describe('openledger datanet (CLI)', () => {
  let node: TestNode;
  let dir: string;
  let url: string;

  before(async () => {
    node = await startTestNode();
    url = node.url;
    dir = await mkdtemp(path.join(tmpdir(), 'openledger-cli-datanets-'));
  });
  after(async () => {
    await node?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('runs the datanet loop: create, contribute, refuse duplicates, approve, export, verify against the chain', async () => {
    const created = await cli(url, [
      'datanet',
      'create',
      '--name',
      'Tide tables',
      '--account',
      '0',
      '--description',
      'Tides, the moon, ocean currents and coastal sea levels.',
      '--tags',
      'ocean,tides',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const id = String(created.json.id);

    const notes = path.join(dir, 'tides.md');
    await writeFile(
      notes,
      '# Tides\n\nSpring tides happen near new and full moon, when the sun and moon align and their pull adds up.\n\nNeap tides happen at the quarter moons, when the pulls partly cancel and the tidal range is smallest.\n',
    );
    const records = path.join(dir, 'qa.jsonl');
    await writeFile(
      records,
      `${JSON.stringify({ instruction: 'What causes tides?', output: "Mainly the moon's gravity, with a smaller pull from the sun, on the rotating earth's oceans." })}\n`,
    );

    const first = await cli(url, [
      'datanet',
      'contribute',
      id,
      notes,
      '--consent',
      '--account',
      '1',
    ]);
    assert.equal(first.code, 0, first.stderr);
    assert.equal(first.json.contributions[0].status, 'pending');
    const second = await cli(url, [
      'datanet',
      'contribute',
      id,
      records,
      '--consent',
      '--account',
      '2',
    ]);
    assert.equal(second.code, 0, second.stderr);
    const duplicate = await cli(url, [
      'datanet',
      'contribute',
      id,
      notes,
      '--consent',
      '--account',
      '2',
    ]);
    assert.equal(duplicate.code, 0, duplicate.stderr);
    assert.equal(duplicate.json.contributions[0].status, 'rejected');
    assert.match(duplicate.json.contributions[0].reasons.join(' '), /exact duplicate/);
    const noConsent = await cli(url, ['datanet', 'contribute', id, notes, '--account', '2']);
    assert.equal(noConsent.code, 1);
    assert.equal(noConsent.json.error.code, 'VALIDATION_FAILED');
    const bad = path.join(dir, 'fake.pdf');
    await writeFile(bad, 'this is not a pdf');
    const badFile = await cli(url, [
      'datanet',
      'contribute',
      id,
      bad,
      '--consent',
      '--account',
      '2',
    ]);
    assert.equal(badFile.code, 1);
    assert.equal(badFile.json.error.code, 'FILE_INVALID');

    const pending = await cli(url, ['datanet', 'pending', id, '--account', '0']);
    assert.equal(pending.code, 0, pending.stderr);
    const ids = pending.json.contributions.map((c: { id: string }) => c.id);
    assert.equal(ids.length, 2);
    const notCurator = await cli(url, ['datanet', 'approve', id, ...ids, '--account', '1']);
    assert.equal(notCurator.json.error.code, 'FORBIDDEN');
    const approved = await cli(url, ['datanet', 'approve', id, ...ids, '--account', '0']);
    assert.equal(approved.code, 0, approved.stderr);
    assert.equal(approved.json.version, 1);

    const versions = await cli(url, ['datanet', 'versions', id]);
    assert.equal(versions.json.versions[0].root, approved.json.root);

    const exportFile = path.join(dir, 'v1.jsonl');
    const exported = await cli(url, [
      'datanet',
      'export',
      id,
      '--version',
      '1',
      '--out',
      exportFile,
    ]);
    assert.equal(exported.code, 0, exported.stderr);
    const verified = await cli(url, [
      'datanet',
      'verify',
      id,
      '--version',
      '1',
      '--export',
      exportFile,
      '--line',
      '1',
    ]);
    assert.equal(verified.code, 0, verified.stderr);
    assert.equal(verified.json.included, true);
    assert.equal(verified.json.rootOnChain, approved.json.root);

    const lines = (await readFile(exportFile, 'utf8')).trim().split('\n');
    const row = JSON.parse(lines[0]!);
    if (row.content.type === 'document') row.content.text += ' And also on Tuesdays.';
    else row.content.output += ' And also on Tuesdays.';
    lines[0] = JSON.stringify(row);
    const tamperedFile = path.join(dir, 'v1-tampered.jsonl');
    await writeFile(tamperedFile, `${lines.join('\n')}\n`);
    const tampered = await cli(url, [
      'datanet',
      'verify',
      id,
      '--version',
      '1',
      '--export',
      tamperedFile,
      '--line',
      '1',
    ]);
    assert.equal(tampered.code, 1);
    assert.equal(tampered.json.error.code, 'CONFLICT');
    assert.equal(tampered.json.error.details.included, false);
  });

  it('keeps a permissioned datanet closed to wallets without a grant, and opens it with one', async () => {
    const created = await cli(url, [
      'datanet',
      'create',
      '--name',
      'Private ledger notes',
      '--policy',
      'permissioned',
      '--account',
      '0',
    ]);
    assert.equal(created.code, 0, created.stderr);
    const id = String(created.json.id);
    const file = path.join(dir, 'private.txt');
    await writeFile(
      file,
      'Internal reconciliation notes for the quarterly close, with account balances reviewed and signed off.',
    );
    const contributed = await cli(url, [
      'datanet',
      'contribute',
      id,
      file,
      '--consent',
      '--account',
      '1',
    ]);
    assert.equal(contributed.code, 0, contributed.stderr);
    const approved = await cli(url, [
      'datanet',
      'approve',
      id,
      contributed.json.contributions[0].id,
      '--account',
      '0',
    ]);
    assert.equal(approved.code, 0, approved.stderr);

    const anonymous = await cli(url, ['datanet', 'export', id]);
    assert.equal(anonymous.code, 1);
    assert.equal(anonymous.json.error.code, 'UNAUTHENTICATED');
    const denied = await cli(url, ['datanet', 'export', id, '--account', '4']);
    assert.equal(denied.code, 1);
    assert.equal(denied.json.error.code, 'FORBIDDEN');

    const requested = await cli(url, [
      'datanet',
      'request-access',
      id,
      '--purpose',
      'Audit sampling',
      '--account',
      '4',
    ]);
    assert.equal(requested.code, 0, requested.stderr);
    const granted = await cli(url, [
      'datanet',
      'grant',
      id,
      '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65',
      '--account',
      '0',
    ]);
    assert.equal(granted.code, 0, granted.stderr);
    assert.equal(granted.json.status, 'granted');
    const allowed = await cli(url, ['datanet', 'export', id, '--account', '4']);
    assert.equal(allowed.code, 0, allowed.stderr);
    assert.equal(allowed.json.rows.length, 1);
  });
});
