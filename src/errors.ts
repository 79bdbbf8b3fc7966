/**
 * Every error that crosses a module border is an IpsecFleetError with a stable `code`, so callers
 * (the CLI's exit codes, the API's problem+json, the pipeline's retry policy) branch on codes and
 * never on message text.
 */
export class IpsecFleetError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }
}
