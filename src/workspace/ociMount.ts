/** The subset of an OCI runtime-spec mount entry the workspace produces (the lead aligns it). */
export interface OciMount {
  destination: string;
  type?: string;
  source?: string;
  options?: string[];
}
