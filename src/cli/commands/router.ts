/**
 * `openledger router`: the adapter-affinity router (src/router) in front of several nodes, run
 * until SIGINT or SIGTERM.
 */
import { Option, type Command } from 'commander';
import { OpenLedgerError } from '../../errors.ts';
import { startRouter } from '../../router/index.ts';
import { runUntilSignal, type Output } from '../output.ts';

interface RouterFlags {
  node?: string[];
  port: string;
  host: string;
  loadFactor: string;
  healthInterval: string;
  logLevel: string;
}

export function registerRouterCommand(program: Command, out: Output): void {
  program
    .command('router')
    .description(
      'route OpenAI-compatible calls to several nodes by adapter affinity until SIGINT/SIGTERM; prints "ready <url>"',
    )
    .option(
      '--node <url>',
      'a node (or any OpenAI-compatible server) behind the router (repeatable, at least one)',
      (value: string, previous: string[] = []) => [...previous, value],
    )
    .addOption(
      new Option('--port <port>', 'HTTP port, 0 for any free one')
        .env('OPENLEDGER_ROUTER_PORT')
        .default('8788'),
    )
    .addOption(new Option('--host <host>', 'interface to bind').default('127.0.0.1'))
    .option(
      '--load-factor <x>',
      'a node takes its keys while its in-flight requests stay within x times the mean (+1)',
      '1.25',
    )
    .option('--health-interval <ms>', "how often each node's /healthz is polled", '5000')
    .addOption(
      new Option('--log-level <level>', 'fatal, error, warn, info, debug, trace or silent')
        .env('OPENLEDGER_LOG_LEVEL')
        .default('info'),
    )
    .action((flags: RouterFlags) => router(flags, out));
}

async function router(flags: RouterFlags, out: Output): Promise<void> {
  if (!flags.node || flags.node.length === 0) {
    throw new OpenLedgerError('CONFIG_INVALID', 'Name at least one node with --node <url>.');
  }
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new OpenLedgerError('CONFIG_INVALID', `--port ${flags.port} is not a port number.`);
  }
  const loadFactor = Number(flags.loadFactor);
  if (!Number.isFinite(loadFactor) || loadFactor < 1) {
    throw new OpenLedgerError('CONFIG_INVALID', '--load-factor must be a number of at least 1.');
  }
  const healthIntervalMs = Number(flags.healthInterval);
  if (!Number.isInteger(healthIntervalMs) || healthIntervalMs < 100) {
    throw new OpenLedgerError('CONFIG_INVALID', '--health-interval must be at least 100 (ms).');
  }
  const running = await startRouter({
    nodes: flags.node,
    host: flags.host,
    port,
    loadFactor,
    healthIntervalMs,
    logLevel: flags.logLevel,
  });
  out.result(
    {
      url: running.url,
      nodes: running.pool.nodes.map((n) => ({ url: n.id, healthy: n.healthy })),
    },
    (r) =>
      [
        `ready ${r.url}`,
        ...r.nodes.map((n) => `  node ${n.url} ${n.healthy ? 'healthy' : 'not healthy (yet)'}`),
      ].join('\n'),
  );

  await runUntilSignal(out, 'finishing requests', () => running.close());
}
