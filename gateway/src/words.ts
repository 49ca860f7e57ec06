/** English for messages built from words the code does not know in advance (roles, device kinds). */

/** The word with its indefinite article: "an affiliate", "an mqtt-instrument", "a custodian". */
export function withArticle(word: string): string {
  // by sound: a vowel, or letters named with one (MQTT is "em-queue-tee"); no role or kind starts with u
  return `${/^([aeio]|mqtt|rfid)/i.test(word) ? 'an' : 'a'} ${word}`;
}
