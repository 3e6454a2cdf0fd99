/** The subcommands that talk to a running corral; kept apart so the master never loads their client. */
export const CONTROL_COMMANDS = ['status', 'reload', 'scale', 'stop'] as const;
export type ControlCommand = (typeof CONTROL_COMMANDS)[number];

export function isControlCommand(word: string | undefined): word is ControlCommand {
  return (CONTROL_COMMANDS as readonly string[]).includes(word ?? '');
}
