#!/usr/bin/env node
// `npm test`: every test/**/*.test.ts through Node's own test runner (TypeScript via tsx).
// Node 20 cannot expand globs in `node --test`, hence this small launcher.
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '..');
const only = process.argv.slice(2);
const files = readdirSync(path.join(root, 'test'), { recursive: true })
  .map(String)
  .filter((file) => file.endsWith('.test.ts'))
  .filter((file) => only.length === 0 || only.some((pattern) => file.includes(pattern)))
  .sort()
  .map((file) => path.join('test', file));

// One file at a time by default: most suites are CPU-bound on CI's two cores, and running two at
// once was no faster on this machine (1,087 s against 982 s, with other work beside it).
// OPENLEDGER_TEST_CONCURRENCY overrides it.
const concurrency = process.env.OPENLEDGER_TEST_CONCURRENCY ?? '1';
const result = spawnSync(
  process.execPath,
  [
    '--import',
    'tsx',
    '--test',
    '--test-reporter=spec',
    `--test-concurrency=${concurrency}`,
    ...files,
  ],
  { cwd: root, stdio: 'inherit' },
);
process.exit(result.status ?? 1);
