// What each file format reader hands the loader: the settings flattened to properties names, so
// one pipeline (load.ts) validates both of Restcomm's formats the same way.

/** One setting as written in a file, whatever its format. */
export interface ConfigEntry {
  key: string;   // properties name (the XML reader translates element paths to it)
  value: string; // unescaped, trimmed
  where: string; // for messages: 'line 12' or '<sip><external><udpPort>'
}

export interface FlatConfig {
  entries: ConfigEntry[];
  warnings: string[];
  /** How many settings were JAIN-SIP stack tuning (javax.sip.*, gov.nist.*, <sipStack>). */
  sipStackKeys: number;
  /** Names the reader itself recognised as having no meaning in siplb. */
  noMeaning: string[];
}
