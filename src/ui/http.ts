// Response bodies the dashboard's server and API share.
export interface Body {
  type: string;
  body: string | Buffer;
}

export const json = (v: unknown): Body => ({
  type: 'application/json; charset=utf-8',
  body: JSON.stringify(v),
});
export const text = (s: string): Body => ({ type: 'text/plain; charset=utf-8', body: `${s}\n` });
