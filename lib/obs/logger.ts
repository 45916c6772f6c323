import { pino, type Logger, type LoggerOptions } from 'pino';

export type { Logger } from 'pino';

/** The process logger: JSON lines on stdout, secrets redacted wherever they may appear. */
export function createLogger(options: { level: string; name: string; destination?: NodeJS.WritableStream }): Logger {
  const config: LoggerOptions = {
    level: options.level,
    name: options.name,
    base: { pid: process.pid, process: options.name },
    redact: {
      paths: ['req.headers.authorization', 'req.headers["x-api-key"]', '*.apiKey', '*.password', 'apiKey'],
      censor: '[redacted]',
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  };
  return options.destination ? pino(config, options.destination) : pino(config);
}
