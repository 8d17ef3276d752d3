import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * One structured logger (JSON lines on stdout). Anything that could carry a credential is
 * redacted by path, as a second line of defence: keys are never logged on purpose.
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'sluice' },
      redact: {
        paths: [
          'apiKey',
          '*.apiKey',
          '*.*.apiKey',
          'headers.authorization',
          'headers["x-api-key"]',
          '*.headers.authorization',
          '*.headers["x-api-key"]',
          'connectionParams.authorization',
          '*.connectionParams.authorization',
        ],
        censor: '[redacted]',
      },
    },
    destination,
  );
}
