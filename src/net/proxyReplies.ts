// How a refusal or a failed dial is answered in each request form: HTTP responses (with the
// deny reason in a header a tool can show) and SOCKS5 reply codes. A refusal's words are the
// denial note's (src/policy/denialText.ts), so the agent reads one text either way.
import http from 'node:http';
import { egressDenialLine } from '../policy/denialText.js';
import type { DialFailure, DialResult } from './dial.js';
import { Reply } from './socks5.js';

type Failure = Extract<DialResult, { ok: false }>;
/** The destination as the request named it (the note and the 403 both show it). */
type Dest = { host: string; port: number };

const DENY_HEADER = 'X-Nanocell-Deny-Reason';

export function socksCode(f: DialFailure): number {
  switch (f) {
    case 'denied':
      return Reply.notAllowed;
    case 'unresolvable':
      return Reply.hostUnreachable;
    case 'refused':
      return Reply.connectionRefused;
    case 'timeout':
      return Reply.ttlExpired;
    case 'unreachable':
      return Reply.networkUnreachable;
  }
}

function httpStatus(f: DialFailure): number {
  return f === 'denied' ? 403 : f === 'timeout' ? 504 : 502;
}

function failureText(res: Failure, dest: Dest): string {
  return res.failure === 'denied'
    ? egressDenialLine({ ...dest, rule: res.decision.rule, reason: res.decision.reason ?? '' })
    : `nanocell could not reach the destination: ${res.error ?? res.failure}`;
}

/** A raw response for a failed dial, for a client socket with no ServerResponse (CONNECT). */
export function failureResponse(res: Failure, dest: Dest): string {
  if (res.failure === 'denied') return deniedResponse(failureText(res, dest));
  return errorResponse(httpStatus(res.failure), failureText(res, dest));
}

function headerSafe(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, 500);
}

/** A transparent-capture refusal of plain HTTP: the 403 the explicit proxy would give. */
export function deniedResponse(reason: string): string {
  const body = `${reason}\n`;
  return (
    `HTTP/1.1 403 Forbidden\r\n${DENY_HEADER}: ${headerSafe(reason)}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

export function errorResponse(status: number, text: string): string {
  const body = `${text}\n`;
  return (
    `HTTP/1.1 ${status} ${http.STATUS_CODES[status] ?? 'Error'}\r\n` +
    `Content-Type: text/plain; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
    `Connection: close\r\n\r\n${body}`
  );
}

export function sendDenied(res: http.ServerResponse, reason: string) {
  const body = `${reason}\n`;
  res.writeHead(403, {
    [DENY_HEADER]: headerSafe(reason),
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

export function sendError(res: http.ServerResponse, status: number, text: string) {
  const body = `${text}\n`;
  res.writeHead(status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

export function sendFailure(res: http.ServerResponse, d: Failure, dest: Dest) {
  if (d.failure === 'denied') sendDenied(res, failureText(d, dest));
  else sendError(res, httpStatus(d.failure), failureText(d, dest));
}
