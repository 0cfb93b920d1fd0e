/**
 * Timing constants that two modules must agree on, with their units. (Each
 * module's own tuning stays beside the code it tunes.)
 */

/** Envoy is asked to wait this much longer than mcp-pin's own bound on the work of one message, so that the work ends first and says what happened (ms). */
export const MESSAGE_TIMEOUT_MARGIN_MS = 1000;
