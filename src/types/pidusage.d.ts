// pidusage 4 ships no types; this declares the part corral uses.
declare module 'pidusage' {
  export interface Status {
    /** Percent of one core, averaged since the previous call for this pid. */
    cpu: number;
    /** Resident set size in bytes. */
    memory: number;
    ppid: number;
    pid: number;
    /** User + system CPU time in ms. */
    ctime: number;
    elapsed: number;
    timestamp: number;
  }
  /** A pid whose process has gone maps to null. */
  function pidusage(pids: number[]): Promise<Record<string, Status | null>>;
  function pidusage(pid: number): Promise<Status>;
  namespace pidusage {
    function clear(): void;
  }
  export default pidusage;
}
