import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { OpenLedgerError } from '../errors.ts';

/**
 * One node per data dir: PGlite and anvil's state file are single-writer. The lock holds the
 * owner's pid; a lock left by a process that no longer exists is taken over.
 */
export async function lockDataDir(dataDir: string): Promise<() => Promise<void>> {
  const file = path.join(dataDir, 'node.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      return () => rm(file, { force: true });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const pid = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isAlive(pid)) {
        throw new OpenLedgerError(
          'CONFIG_INVALID',
          `Another node (pid ${pid}) is using the data dir ${dataDir}.`,
          {
            hint: 'Stop that node first, or start this one with another --data-dir.',
          },
        );
      }
      await rm(file, { force: true });
    }
  }
  throw new OpenLedgerError('CONFIG_INVALID', `Cannot lock the data dir ${dataDir}.`);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
