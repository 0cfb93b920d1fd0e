/**
 * The table of every error code as docs/errors.md shows it: where it shows,
 * what a client gets (status, JSON-RPC code, Envoy's response code
 * details, whether the request may have run) and what it means. Written
 * into the doc by scripts/error-table.ts; a unit test checks they agree.
 */
import { ERROR_CODES, type PinErrorCode } from '../errors.js';
import { CLIENT_ERRORS } from './error-responses.js';

const SEEN: Record<(typeof ERROR_CODES)[PinErrorCode]['seen'], string> = {
  client: 'client',
  stream: 'gRPC stream',
  process: 'mcp-pin at start',
  operator: 'command line',
  log: 'logs only',
};

export const ERROR_TABLE_HEAD =
  '| code | seen by | HTTP status | JSON-RPC code | details | may have run | meaning |\n| --- | --- | --- | --- | --- | --- | --- |\n';

export function errorTable(): string {
  const rows = (Object.keys(ERROR_CODES) as PinErrorCode[]).map((code) => {
    const { seen, meaning } = ERROR_CODES[code];
    const answer = CLIENT_ERRORS[code];
    const client =
      seen === 'client' ? [String(answer.status), String(answer.jsonRpcCode), `\`${answer.details}\``, answer.mayHaveRun ? 'yes' : 'no'] : ['-', '-', '-', '-'];
    return `| \`${code}\` | ${SEEN[seen]} | ${client.join(' | ')} | ${meaning.replace(/\|/g, '\\|')} |`;
  });
  return ERROR_TABLE_HEAD + rows.join('\n');
}
