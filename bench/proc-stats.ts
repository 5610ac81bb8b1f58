/**
 * Memory and CPU of a local process from Linux `/proc` (the bench only runs on the local stack).
 * Every reader returns undefined instead of throwing once the process is gone.
 */
import { readdirSync, readFileSync } from 'node:fs';

/** Clock ticks per second of `/proc/<pid>/stat` times (USER_HZ; 100 on every mainstream Linux build). */
const CLOCK_TICKS_PER_S = 100;

export interface ProcMemory {
  /** Resident set size now, bytes (`VmRSS`). */
  readonly rssBytes: number;
  /** Peak resident set size since the process started, bytes (`VmHWM`). */
  readonly peakRssBytes: number;
}

function statusField(status: string, field: string): number | undefined {
  const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB$`, 'm').exec(status);
  return m ? Number(m[1]) * 1024 : undefined;
}

/** RSS and peak RSS of `pid` (`'self'` for this process). */
export function readMemory(pid: number | 'self'): ProcMemory | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const rssBytes = statusField(status, 'VmRSS');
    const peakRssBytes = statusField(status, 'VmHWM');
    if (rssBytes === undefined || peakRssBytes === undefined) return undefined;
    return { rssBytes, peakRssBytes };
  } catch {
    return undefined;
  }
}

/** User + system CPU seconds consumed so far by `pid` (`'self'` for this process). */
export function readCpuSeconds(pid: number | 'self'): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may contain spaces; the fields after its closing paren are fixed.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // utime and stime are fields 14 and 15 of the full line, i.e. 11 and 12 after the paren.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return undefined;
  }
}

/**
 * User + system CPU seconds of every live process whose command name (`/proc/<pid>/comm`) is
 * `name`, e.g. all `postgres` backends, or the `temporal` dev server. Processes that exited
 * between two readings drop out, so a delta is a lower bound when backends come and go.
 */
export function readCpuSecondsOfCommand(name: string): number {
  let sum = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')')) !== name) continue;
      sum += readCpuSeconds(Number(entry)) ?? 0;
    } catch {
      // gone meanwhile
    }
  }
  return sum;
}
