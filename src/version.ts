/** The release version. `scripts/build.ts` stamps the commit into build_info.ts for releases. */
export const VERSION = "0.1.0";
