/** Where a problem was found, so the message can name it. */
export interface ErrorContext {
  file?: string;
  tensor?: string;
}

/**
 * A problem with what the user gave us (input files, flags, output location).
 * The CLI prints it without a stack trace and exits with code 2.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly context: ErrorContext = {},
  ) {
    super(formatWithContext(message, context));
    this.name = "UserError";
  }
}

function formatWithContext(message: string, { file, tensor }: ErrorContext): string {
  const where = [file, tensor && `tensor '${tensor}'`].filter(Boolean).join(", ");
  return where ? `${where}: ${message}` : message;
}
