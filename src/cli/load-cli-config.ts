/** The config a CLI command runs with: the file given with --config, or the embedded default. */
import { ConfigError } from '../config/config-error.js';
import type { PosternConfig } from '../config/config-schema.js';
import { defaultConfig, loadConfigFile } from '../config/load-config.js';

export function loadCliConfig(file: string | undefined): PosternConfig {
  try {
    return file ? loadConfigFile(file) : defaultConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`postern: configuration errors:\n${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
}
