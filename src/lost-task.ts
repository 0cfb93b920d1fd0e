/**
 * A task (2025-11-25, a task-augmented request) lives in the memory of the
 * pod that ran it. After mcp-pin moved a session to another pod, a
 * `tasks/get`, `tasks/result` or `tasks/cancel` for a task started before
 * the move reaches a pod that never heard of it, and the client gets that
 * pod's "Task not found" for a task it just saw running. These functions
 * find that answer in a pod's response body and say why instead.
 *
 * No dependency on other modules: the ext_proc filter (extproc/task-answer.ts)
 * and the tests use it.
 */

export const TASK_METHODS = ['tasks/get', 'tasks/result', 'tasks/cancel'] as const;

/** JSON-RPC "Invalid params", the code both SDKs answer an unknown task with. */
const INVALID_PARAMS = -32602;

/**
 * How the SDKs word an unknown task: TypeScript 1.32 "Failed to retrieve
 * task: Task not found" and "Task not found: <id>" (tested); Python `mcp`
 * 1.30 "Task not found: <id>" (read in its source, mcp/shared/experimental/
 * tasks/helpers.py; not run here). Both with -32602.
 */
const TASK_NOT_FOUND = /\btask\b.*\bnot found\b/i;

/** What the client reads instead: what happened, and what to do. */
export const LOST_TASK_MESSAGE =
  'Task not found on the pod that holds this session now: the pod this session ran on was ' +
  'lost and mcp-pin moved the session to another pod. A task started before that move ran on ' +
  'the lost pod and is gone (tasks do not survive a move); start it again.';

/** The `data.mcpPin` a rewritten error carries, so a program can tell this case apart. */
export const LOST_TASK_REASON = 'task_lost_with_pod';

interface RpcError {
  jsonrpc?: unknown;
  id?: unknown;
  error: { code: number; message: string; data?: unknown };
}

function isUnknownTaskError(m: unknown): m is RpcError {
  if (typeof m !== 'object' || m === null) return false;
  const e = (m as { error?: unknown }).error;
  if (typeof e !== 'object' || e === null) return false;
  const { code, message } = e as { code?: unknown; message?: unknown };
  return code === INVALID_PARAMS && typeof message === 'string' && TASK_NOT_FOUND.test(message);
}

function explained(m: RpcError): RpcError {
  const data =
    typeof m.error.data === 'object' && m.error.data !== null && !Array.isArray(m.error.data)
      ? m.error.data
      : m.error.data === undefined
        ? {}
        : { pod: m.error.data };
  return { ...m, error: { code: m.error.code, message: LOST_TASK_MESSAGE, data: { ...data, mcpPin: LOST_TASK_REASON, podMessage: m.error.message } } };
}

function parse(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

/**
 * The body with each "Task not found" error explained, or undefined when it
 * holds none. A JSON body must be whole; an SSE piece is read event by event,
 * and only whole events (ended by a blank line) are changed: anything else
 * passes as it came.
 */
export function explainUnknownTask(body: Buffer, contentType: string | undefined): Buffer | undefined {
  const text = body.toString('utf8');
  if (contentType?.toLowerCase().includes('text/event-stream')) return explainEvents(text);
  const m = parse(text);
  if (!isUnknownTaskError(m)) return undefined;
  return Buffer.from(JSON.stringify(explained(m)));
}

function explainEvents(text: string): Buffer | undefined {
  // Events end with a blank line; the last piece is the unfinished rest (often empty).
  const pieces = text.split(/(\r?\n\r?\n)/);
  let changed = false;
  for (let i = 0; i + 1 < pieces.length; i += 2) {
    const lines = (pieces[i] ?? '').split(/\r?\n/);
    const data = lines
      .filter((l) => l.startsWith('data:'))
      .map((l) => l.slice(5).replace(/^ /, ''))
      .join('\n');
    if (!data) continue;
    const m = parse(data);
    if (!isUnknownTaskError(m)) continue;
    // One data line where the first was; every other line as it came.
    const out: string[] = [];
    for (const l of lines) {
      if (!l.startsWith('data:')) out.push(l);
      else if (!out.some((o) => o.startsWith('data:'))) out.push(`data: ${JSON.stringify(explained(m))}`);
    }
    pieces[i] = out.join('\n');
    changed = true;
  }
  return changed ? Buffer.from(pieces.join('')) : undefined;
}
