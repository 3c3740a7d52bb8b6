import assert from 'node:assert/strict';
import path from 'node:path';
import { describe, it } from 'node:test';
import { DEFAULT_PORT, resolveConfig } from '../src/config.ts';
import type { OpenLedgerError } from '../src/errors.ts';

describe('configuration', () => {
  it('defaults to 127.0.0.1, the default port and ./.openledger', () => {
    const config = resolveConfig({}, {});
    assert.equal(config.host, '127.0.0.1');
    assert.equal(config.port, DEFAULT_PORT);
    assert.equal(config.dataDir, path.resolve('.openledger'));
    assert.equal(config.rpcUrl, undefined);
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.serving.maxContexts, 8);
    assert.equal(resolveConfig({ maxContexts: '2' }, {}).serving.maxContexts, 2);
  });

  it('reads OPENLEDGER_* variables, and flags win over them', () => {
    const env = {
      OPENLEDGER_PORT: '9000',
      OPENLEDGER_HOST: '0.0.0.0',
      OPENLEDGER_DATA_DIR: '/tmp/x',
      OPENLEDGER_RPC_URL: 'https://rpc.example/op',
      DATABASE_URL: 'postgres://u@localhost/db',
    };
    const fromEnv = resolveConfig({}, env);
    assert.equal(fromEnv.port, 9000);
    assert.equal(fromEnv.host, '0.0.0.0');
    assert.equal(fromEnv.dataDir, '/tmp/x');
    assert.equal(fromEnv.rpcUrl, 'https://rpc.example/op');
    assert.equal(fromEnv.databaseUrl, 'postgres://u@localhost/db');
    assert.equal(resolveConfig({ port: '9001' }, env).port, 9001);
  });

  it('rejects bad values with CONFIG_INVALID and says which setting', () => {
    const bad: [Record<string, string>, Record<string, string>, RegExp][] = [
      [{ port: '70000' }, {}, /--port/],
      [{ port: 'abc' }, {}, /--port/],
      [{ rpcUrl: 'not a url' }, {}, /--rpc-url/],
      [{ logLevel: 'loud' }, {}, /log level/],
      [{}, { OPENLEDGER_PRIVATE_KEY: '0x1234' }, /OPENLEDGER_PRIVATE_KEY/],
      [{ maxContexts: '0' }, {}, /--max-contexts/],
      [{ maxContexts: 'many' }, {}, /--max-contexts/],
    ];
    for (const [flags, env, message] of bad) {
      assert.throws(
        () => resolveConfig(flags, env),
        (error: OpenLedgerError) => error.code === 'CONFIG_INVALID' && message.test(error.message),
      );
    }
  });
});
