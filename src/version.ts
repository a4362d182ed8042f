/** The sqlbk version, as `sqlbk --version` prints it. */
export const VERSION = "0.1.0";
