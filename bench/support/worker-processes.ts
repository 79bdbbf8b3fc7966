import { type ChildProcess, fork } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { join } from 'node:path';
import { projectRoot } from '../../src/package-info.js';
import type { WorkerChildMessage, WorkerChildSettings } from './worker-child.js';

export interface WorkerProcesses {
  /** Emits 'completed' and 'failed' once per job, as a BullMQ Worker does (without the job). */
  events: EventEmitter;
  pids: number[];
  close(): Promise<void>;
}

/** Starts `count` change workers, each a child process, and resolves once every one has started. */
export async function startWorkerProcesses(
  count: number,
  settings: WorkerChildSettings,
): Promise<WorkerProcesses> {
  const script = join(projectRoot, 'dist/bench/support/worker-child.js');
  const events = new EventEmitter();
  const children: ChildProcess[] = [];
  const exits: Promise<void>[] = [];
  const close = async () => {
    for (const child of children) if (child.connected) child.send('close');
    const timer = setTimeout(() => {
      for (const child of children) child.kill('SIGKILL');
    }, 10_000);
    await Promise.all(exits);
    clearTimeout(timer);
  };
  try {
    await Promise.all(
      Array.from({ length: count }, () => {
        const child = fork(script, [], { stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
        children.push(child);
        exits.push(new Promise((resolve) => child.once('exit', () => resolve())));
        return new Promise<void>((resolve, reject) => {
          const onExit = (code: number | null) =>
            reject(new Error(`a bench worker process exited (code ${code}) before it started`));
          child.once('exit', onExit);
          child.on('message', (message: WorkerChildMessage) => {
            if ('ready' in message) {
              child.off('exit', onExit);
              resolve();
              return;
            }
            for (let i = 0; i < message.completed; i++) events.emit('completed');
            for (let i = 0; i < message.failed; i++) events.emit('failed');
          });
          child.send(settings);
        });
      }),
    );
  } catch (error) {
    await close();
    throw error;
  }
  return { events, pids: children.map((child) => child.pid as number), close };
}
