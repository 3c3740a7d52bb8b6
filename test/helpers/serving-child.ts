/**
 * A serving node in a process of its own, for measuring its memory apart from the test
 * runner's: `node --import tsx test/helpers/serving-child.ts '<serving options JSON>'` prints
 * one JSON line (url, keys, dataDir, pid) when ready and stops when its stdin closes.
 */
import { startServingNode } from './serving.ts';

const node = await startServingNode(JSON.parse(process.argv[2] ?? '{}'));
process.stdout.write(
  `${JSON.stringify({
    url: node.url,
    dataDir: node.dataDir,
    operatorKey: node.operatorKey,
    callerKey: node.callerKey,
    pid: process.pid,
  })}\n`,
);
process.stdin.resume();
process.stdin.on('end', () => {
  void node.close().then(() => process.exit(0));
});
