// Kubernetes object names and quantities, checked before anything is rendered or sent.
import { NanocellError } from '../util/errors.js';

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** A DNS-1123 label (namespaces, shape names that also name Services), at most `max` long. */
export function checkDnsLabel(what: string, value: string, max = 63): string {
  if (value.length > max || !DNS_LABEL.test(value)) {
    throw new NanocellError(
      `${what} ${JSON.stringify(value)} is not a valid Kubernetes name`,
      `use at most ${max} lower-case letters, digits and '-', starting and ending with a letter or digit`,
      'USAGE',
    );
  }
  return value;
}

/** Bytes as a plain integer quantity: exact, no rounding to Mi. */
export const bytesQuantity = (n: number): string => String(Math.floor(n));

/** CPU cores as millicores. */
export const cpuQuantity = (cores: number): string => `${Math.max(1, Math.round(cores * 1000))}m`;
