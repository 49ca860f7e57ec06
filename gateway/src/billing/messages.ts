/**
 * The words of statements and invoices in English and French, and numbers, money and dates
 * formatted for each (Intl). A small catalogue: every language has every key (the type says so),
 * and `{name}` in a message is replaced by the value given for it.
 */
export type Language = 'en' | 'fr';

const en = {
  invoice: 'Invoice',
  statement: 'Statement',
  invoiceNumber: 'Invoice number',
  issued: 'Issued',
  period: 'Period',
  noNumberYet: 'Statement of an open month: the invoice number is given when the month is closed.',
  noInvoice: 'Nothing to pay this month: no invoice.',
  billedTo: 'Billed to',
  date: 'Date',
  time: 'Time',
  tool: 'Tool',
  useType: 'Use',
  grams: 'g',
  usage: 'Usage',
  material: 'Material',
  technician: 'Technician',
  total: 'Total',
  correction: 'Correction: {reason}',
  valueOnly: 'no charge (value {value})',
  noSessions: 'No sessions this month.',
  subtotal: 'Subtotal',
  taxLine: '{name} {rate} % on {base}',
  registration: 'Registration no. {number}',
  totalDue: 'Total of this invoice',
  whereMoneyGoes: 'Where your money goes',
  fundMaterial: 'Material',
  fundTechnician: 'Technician',
  fundMaintenance: 'Maintenance of the tools',
  fundInfrastructure: 'Infrastructure',
  fundPayback: 'Paying back the co-owners',
  account: 'Your account',
  opening: 'Balance before this month',
  charges: 'This invoice',
  payment: 'Payment {date} ({method}, {reference})',
  closing: 'Balance',
  valueNote: 'Uses with no cash charge were worth {value}: recorded, not owed.',
  page: 'Page {n}',
  amountsIn: 'Amounts in {currency}',
  timesIn: 'times in {zone}',
  cash: 'cash',
  cheque: 'cheque',
  transfer: 'transfer',
  card: 'card',
  other: 'other',
};

export type MessageKey = keyof typeof en;

const fr: Record<MessageKey, string> = {
  invoice: 'Facture',
  statement: 'Relevé',
  invoiceNumber: 'Numéro de facture',
  issued: 'Émise le',
  period: 'Période',
  noNumberYet: "Relevé d'un mois ouvert : le numéro de facture est attribué à la clôture du mois.",
  noInvoice: 'Rien à payer ce mois-ci : pas de facture.',
  billedTo: 'Facturé à',
  date: 'Date',
  time: 'Heure',
  tool: 'Outil',
  useType: 'Usage',
  grams: 'g',
  usage: 'Utilisation',
  material: 'Matériel',
  technician: 'Technicien',
  total: 'Total',
  correction: 'Correction : {reason}',
  valueOnly: 'sans frais (valeur {value})',
  noSessions: 'Aucune séance ce mois-ci.',
  subtotal: 'Sous-total',
  taxLine: '{name} {rate} % sur {base}',
  registration: "Numéro d'inscription {number}",
  totalDue: 'Total de cette facture',
  whereMoneyGoes: 'Où va votre argent',
  fundMaterial: 'Matériel',
  fundTechnician: 'Technicien',
  fundMaintenance: 'Entretien des outils',
  fundInfrastructure: 'Infrastructure',
  fundPayback: 'Remboursement des copropriétaires',
  account: 'Votre compte',
  opening: 'Solde avant ce mois',
  charges: 'Cette facture',
  payment: 'Paiement du {date} ({method}, {reference})',
  closing: 'Solde',
  valueNote: "Les usages sans frais valaient {value} : enregistrés, non dus.",
  page: 'Page {n}',
  amountsIn: 'Montants en {currency}',
  timesIn: 'heures en {zone}',
  cash: 'comptant',
  cheque: 'chèque',
  transfer: 'virement',
  card: 'carte',
  other: 'autre',
};

export const CATALOGUE: Record<Language, Record<MessageKey, string>> = { en, fr };

const LOCALE: Record<Language, string> = { en: 'en-CA', fr: 'fr-CA' };

export function isLanguage(s: unknown): s is Language {
  return s === 'en' || s === 'fr';
}

/**
 * Formatting for one language. Amounts arrive as exact decimal text (formatMinor) and Intl
 * formats that text, so no binary float stands between the cents and the page. Narrow and
 * ordinary no-break spaces (French thousands, "12,34 $") become plain spaces: the PDF's standard
 * fonts have no narrow one, and a reader copies plain spaces better.
 */
export function formatter(lang: Language, currency: string, minorUnit: number, timeZone: string) {
  const locale = LOCALE[lang];
  const plain = (s: string) => s.replace(/[\u00a0\u202f]/g, ' ');
  const num = new Intl.NumberFormat(locale, { minimumFractionDigits: minorUnit, maximumFractionDigits: minorUnit });
  const cur = new Intl.NumberFormat(locale, { style: 'currency', currency, minimumFractionDigits: minorUnit, maximumFractionDigits: minorUnit });
  const grams = new Intl.NumberFormat(locale, { maximumFractionDigits: 1 });
  const day = new Intl.DateTimeFormat(locale, { timeZone, year: 'numeric', month: '2-digit', day: '2-digit' });
  const hm = new Intl.DateTimeFormat('en-CA', { timeZone, hour: '2-digit', minute: '2-digit', hourCycle: 'h23' }); // 14:05 in both: short enough for the table
  const monthName = new Intl.DateTimeFormat(locale, { timeZone: 'UTC', year: 'numeric', month: 'long' });
  const asText = (decimal: string) => decimal as unknown as number; // Intl formats a decimal string exactly (ES2023)
  return {
    t(key: MessageKey, vars: Record<string, string | number> = {}): string {
      return CATALOGUE[lang][key].replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
    },
    /** A label before its value: "Period:" / "Période :". */
    label(key: MessageKey): string {
      return lang === 'fr' ? `${CATALOGUE.fr[key]} :` : `${CATALOGUE.en[key]}:`;
    },
    /** A plain amount (table cells): "1,234.50" / "1 234,50". */
    amount: (decimal: string) => plain(num.format(asText(decimal))),
    /** An amount with its currency: "$1,234.50" / "1 234,50 $". */
    money: (decimal: string) => plain(cur.format(asText(decimal))),
    grams: (g: number) => plain(grams.format(g)),
    /** A percentage rate as configured ("9.975") in the language's decimals. */
    rate: (decimal: string) => (lang === 'fr' ? decimal.replace('.', ',') : decimal),
    day: (iso: string) => day.format(new Date(iso)),
    time: (iso: string) => hm.format(new Date(iso)),
    month: (period: string) => plain(monthName.format(new Date(`${period}-15T00:00:00Z`))),
  };
}

export type Formatter = ReturnType<typeof formatter>;
