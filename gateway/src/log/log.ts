/**
 * @module Operator log of a running gateway: one line per event, written for a
 * person (stderr), with a timestamp and a level.
 */
export interface Log {
  info(message: string): void;
  warn(message: string): void;
  error(message: string): void;
}

export function consoleLog(stream: NodeJS.WritableStream = process.stderr): Log {
  const line = (level: string, message: string) => stream.write(`${new Date().toISOString()} ${level} ${message}\n`);
  return { info: (m) => line('info ', m), warn: (m) => line('WARN ', m), error: (m) => line('ERROR', m) };
}
