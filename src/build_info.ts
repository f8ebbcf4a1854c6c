// Overwritten by scripts/build.ts when compiling a release; "dev" when run from source.
export const BUILD_COMMIT = "dev";
