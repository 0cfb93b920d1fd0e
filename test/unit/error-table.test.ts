import { expect } from 'chai';
import { readFileSync } from 'node:fs';
import { PinError, ERROR_CODES, type PinErrorCode } from '../../src/errors.js';
import { CLIENT_ERRORS, errorResponse } from '../../src/extproc/error-responses.js';
import { errorTable } from '../../src/extproc/error-table.js';
import { ValuesFileError } from '../../src/config-file.js';
import { TemplateValuesError, ValueProblem } from '../../envoy/values.js';

describe('error codes (issue 31 item 4)', () => {
  it('docs/errors.md holds the table of every code, as the code says it', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    expect(doc).to.include(errorTable());
    for (const code of Object.keys(ERROR_CODES)) expect(doc, code).to.include(`| \`${code}\` |`);
  });

  it('every code a client can get is answered by the one mapping, as the table says', () => {
    const table = errorTable();
    for (const code of Object.keys(ERROR_CODES) as PinErrorCode[]) {
      const r = errorResponse(code).immediate_response!;
      const e = CLIENT_ERRORS[code];
      expect(r.status.code, code).to.equal(e.status);
      expect(r.details, code).to.equal(e.details);
      const body = JSON.parse(r.body!.toString()) as { error: { code: number; message: string } };
      expect(body.error.code, code).to.equal(e.jsonRpcCode);
      expect(body.error.message, code).to.equal(e.message);
      if (ERROR_CODES[code].seen === 'client')
        expect(table, code).to.include(`| \`${code}\` | client | ${e.status} | ${e.jsonRpcCode} | \`${e.details}\` | ${e.mayHaveRun ? 'yes' : 'no'} |`);
      // A request that may have run is never answered as if it did not: the message says so.
      if (ERROR_CODES[code].seen === 'client' && e.mayHaveRun)
        expect(e.message, code).to.match(/may have run|ran on|internal error|no session was created|could not pin/);
    }
  });

  it('answers that read the same (status, details, message) agree on whether the request may have run: a client can tell from what it reads', () => {
    const byAnswer = new Map<string, Set<boolean>>();
    for (const e of Object.values(CLIENT_ERRORS)) {
      const key = `${e.status} ${e.details} ${e.message}`;
      byAnswer.set(key, (byAnswer.get(key) ?? new Set()).add(e.mayHaveRun));
    }
    for (const [answer, mayHaveRun] of byAnswer) expect([...mayHaveRun], answer).to.have.length(1);
  });

  it('config and template errors are in the one hierarchy, with their codes', () => {
    expect(new ValuesFileError(['x']))
      .to.be.instanceOf(PinError)
      .with.property('code', 'MCP_PIN_BAD_CONFIG_FILE');
    expect(new ValueProblem('x')).to.be.instanceOf(PinError).with.property('code', 'MCP_PIN_BAD_TEMPLATE_VALUE');
    expect(new TemplateValuesError(['x']))
      .to.be.instanceOf(PinError)
      .with.property('code', 'MCP_PIN_BAD_TEMPLATE_VALUES');
  });
});
