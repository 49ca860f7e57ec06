/*
 * node-sim: the metering-node firmware in a simulated ATmega2560 (simavr), paced to wall time,
 * with its UART0 on a pseudo-terminal for the gateway and the world around the board simulated:
 * an RDM6300 on UART1, an S0 energy meter, the tool's busy line, a relay whose feedback contact
 * follows the coil, the reset button and the power supply.
 *
 *   node-sim [--imp-per-kwh N] [--standby W] <firmware.elf>
 *
 * Prints "pty <path>" once the pseudo-terminal is open, then reads one command a line on stdin
 * and answers each with one line: "ok", "ok <json>" or "error <message>" (type "help").
 * Ground truth ("truth") is what the simulated world did (pulses sent, seconds closed and busy)
 * and what the firmware reported (its last METER of each boot, decoded from the wire).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "avr_adc.h"
#include "avr_ioport.h"
#include "avr_uart.h"
#include "sim_avr.h"
#include "sim_elf.h"

#include "ovn_proto.h"

#define F_CPU 16000000.0
/* data-space addresses on the ATmega2560 (avr/iomxx0_1.h: _SFR_IO8(x) is x + 0x20) */
#define MCUSR_ADDR (0x34 + 0x20)
#define GPIOR1_ADDR (0x2A + 0x20)
#define PORF 0
#define EXTRF 1
#define BORF 2
#define STALL_MAGIC 0xA5 /* main.c */
#define S0_PULSE_S 0.04  /* an S0 pulse is at least 30 ms long */
#define CONTACT_DELAY_S 0.01
#define MAX_BOOTS 64

static avr_t *avr;
static double start;
static double imp_per_kwh = 1000, standby_w = 8;

/* ---- time: simulated seconds since start, across resets (avr_reset sets cycle to 0) ---- */

static double cycles_before_reset;
static avr_cycle_count_t last_cycle;

static double sim_now(void) {
  if (avr->cycle < last_cycle) cycles_before_reset += (double)last_cycle; /* newer simavr restarts cycle at reset */
  last_cycle = avr->cycle;
  return (cycles_before_reset + (double)avr->cycle) / F_CPU;
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- byte queues into a UART, honouring its XON/XOFF so nothing is dropped ---- */

typedef struct {
  uint8_t buf[8192];
  size_t head, tail;
  int xon;
  avr_irq_t *input;
} feed_t;

static feed_t feed0, feed1;

static void feed_flush(feed_t *f) {
  while (f->xon && f->tail != f->head) {
    uint8_t b = f->buf[f->tail];
    f->tail = (f->tail + 1) % sizeof f->buf;
    avr_raise_irq(f->input, b);
  }
}

static void feed_put(feed_t *f, const uint8_t *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    size_t next = (f->head + 1) % sizeof f->buf;
    if (next == f->tail) break; /* 8 KB behind: the line is flooded, like a real one */
    f->buf[f->head] = p[i];
    f->head = next;
  }
  feed_flush(f);
}

static void xon_hook(avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  feed_t *f = param;
  if (!value) return;
  f->xon = 1;
  feed_flush(f);
}

static void xoff_hook(avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  if (value) ((feed_t *)param)->xon = 0;
}

static void connect_uart(char uart, feed_t *f, avr_irq_notify_t out_hook) {
  uint32_t flags = 0; /* no stdio echo of the bytes */
  avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS(uart), &flags);
  flags &= ~AVR_UART_FLAG_STDIO;
  avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS(uart), &flags);
  f->input = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ(uart), UART_IRQ_INPUT);
  f->xon = 1;
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ(uart), UART_IRQ_OUT_XON), xon_hook, f);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ(uart), UART_IRQ_OUT_XOFF), xoff_hook, f);
  if (out_hook) avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ(uart), UART_IRQ_OUTPUT), out_hook, NULL);
}

/* ---- ground truth ---- */

typedef struct {
  uint32_t boot_id;
  uint8_t reset_cause;
  double pulses, relay_on_s, active_s;
  ovn_meter_t reported;
} boot_t;

static struct {
  boot_t boots[MAX_BOOTS];
  int nboots;
  uint8_t pending_cause; /* the cause of the reset the harness caused, until the HELLO names its boot */
  struct {
    uint8_t pattern;
    uint16_t duration_ms;
    char text[OVN_INDICATE_TEXT_MAX + 1];
  } indications[64];
  int nindications;
  unsigned long frames_out, frames_in, corrupted;
} truth;

static boot_t *current_boot(void) { return truth.nboots ? &truth.boots[truth.nboots - 1] : NULL; }

static void from_node(const ovn_msg_t *m) {
  truth.frames_out++;
  if (m->type == OVN_HELLO) {
    boot_t *b = current_boot();
    if (b && b->boot_id == m->u.hello.boot_id) return; /* HELLO again, asked for */
    if (!b || b->boot_id != 0) {
      if (truth.nboots == MAX_BOOTS) {
        memmove(truth.boots, truth.boots + 1, sizeof truth.boots[0] * (MAX_BOOTS - 1));
        truth.nboots--;
      }
      b = &truth.boots[truth.nboots++];
      memset(b, 0, sizeof *b);
    }
    b->boot_id = m->u.hello.boot_id;
    b->reset_cause = m->u.hello.reset_cause;
  } else if (m->type == OVN_METER) {
    boot_t *b = current_boot();
    if (b && b->boot_id == m->u.meter.boot_id) b->reported = m->u.meter;
  }
}

static void from_gateway(const ovn_msg_t *m) {
  truth.frames_in++;
  if (m->type == OVN_INDICATE && truth.nindications < 64) {
    typeof(truth.indications[0]) *i = &truth.indications[truth.nindications++];
    i->pattern = m->u.indicate.pattern;
    i->duration_ms = m->u.indicate.duration_ms;
    memcpy(i->text, m->u.indicate.text.data, m->u.indicate.text.len + 1);
  }
}

/* ---- UART0 <-> pseudo-terminal ---- */

static int pty_fd = -1;
static ovn_framer_t out_framer, in_framer;
static uint8_t out_frame[OVN_MAX_WIRE_FRAME * 2];
static size_t out_len;
static uint8_t to_pty[65536];
static size_t to_pty_len;
static int corrupt_next, lose_acks;

static void pty_write(const uint8_t *p, size_t n) {
  if (to_pty_len + n > sizeof to_pty) return; /* nobody reads the terminal: dropped, as a UART would */
  memcpy(to_pty + to_pty_len, p, n);
  to_pty_len += n;
}

/* Bytes the firmware sends: decoded for the truth, a frame at a time, and maybe corrupted on the way. */
static void uart0_out_hook(avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq, (void)param;
  uint8_t b = (uint8_t)value;
  ovn_msg_t m;
  int ack = 0;
  if (ovn_framer_push(&out_framer, b, &m) == 1) {
    from_node(&m);
    ack = m.type == OVN_ACK;
  }
  if (out_len < sizeof out_frame) out_frame[out_len++] = b;
  if (b != 0) return;
  if (ack && lose_acks > 0) {
    lose_acks--;
    truth.corrupted++;
    out_frame[out_len / 2] ^= 0x10;
  } else if (corrupt_next > 0 && out_len > 2) {
    corrupt_next--;
    truth.corrupted++;
    out_frame[out_len / 2] ^= 0x10;
  }
  pty_write(out_frame, out_len);
  out_len = 0;
}

static void pty_service(void) {
  uint8_t buf[512];
  ssize_t n;
  while ((n = read(pty_fd, buf, sizeof buf)) > 0) {
    ovn_msg_t m;
    for (ssize_t i = 0; i < n; i++)
      if (ovn_framer_push(&in_framer, buf[i], &m) == 1) from_gateway(&m);
    feed_put(&feed0, buf, (size_t)n);
  }
  if (to_pty_len) {
    n = write(pty_fd, to_pty, to_pty_len);
    if (n > 0) {
      memmove(to_pty, to_pty + n, to_pty_len - (size_t)n);
      to_pty_len -= (size_t)n;
    } else if (n < 0 && errno == EIO) {
      to_pty_len = 0; /* no one has the terminal open */
    }
  }
}

/* ---- the world around the board ---- */

/* An input pin driven from outside. The level is also set as the port's "external" state, or
 * simavr would read the internal pull-up (PORTx bit set) at every write of PORTx instead. */
typedef struct {
  char port;
  uint8_t bit;
  uint16_t pin_addr; /* PINx in data space (avr/iomxx0_1.h) */
  int level;
  avr_irq_t *irq;
} pin_t;

static pin_t pin_s0 = {'E', 4, 0x0C + 0x20, 1, NULL}, pin_busy = {'G', 5, 0x12 + 0x20, 1, NULL}, pin_contact = {'H', 5, 0x100, 1, NULL};
static pin_t *const inputs[] = {&pin_s0, &pin_busy, &pin_contact};
static struct {
  uint8_t mask, value;
} external['L' - 'A' + 1];

static void drive(pin_t *pin, int level) {
  pin->level = level;
  uint8_t bit = (uint8_t)(1u << pin->bit), *value = &external[pin->port - 'A'].value;
  external[pin->port - 'A'].mask |= bit;
  *value = (uint8_t)(level ? *value | bit : *value & ~bit);
  avr_ioport_external_t ext = {.name = (unsigned long)pin->port, .mask = external[pin->port - 'A'].mask, .value = *value};
  avr_ioctl(avr, AVR_IOCTL_IOPORT_SET_EXTERNAL(pin->port), &ext);
  avr_raise_irq(pin->irq, level ? 1 : 0);
}

static struct {
  int coil, contact, stuck, busy;
  double power_w;
  double energy_j;        /* drawn since the last pulse */
  double pulse_end;       /* the S0 output is closed until then */
  double coil_changed_at; /* the contact follows CONTACT_DELAY_S later */
  double last;
} world = {.power_w = 120};

static struct {
  uint8_t frame[14];
  double until, next;
} card;

static void coil_hook(avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq, (void)param;
  if ((int)(value & 1) == world.coil) return;
  world.coil = value & 1;
  world.coil_changed_at = sim_now();
}

/* A reset clears the PINx registers; the levels outside have not changed. */
static void restore_inputs(void) {
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    uint8_t bit = (uint8_t)(1u << inputs[i]->bit), *reg = &avr->data[inputs[i]->pin_addr];
    if (!(*reg & bit) != !inputs[i]->level) *reg = (uint8_t)(inputs[i]->level ? *reg | bit : *reg & ~bit);
  }
}

static void world_step(double now) {
  double dt = now - world.last;
  world.last = now;
  restore_inputs();
  if (dt <= 0) return;
  if (!world.stuck && world.contact != world.coil && now - world.coil_changed_at >= CONTACT_DELAY_S) {
    world.contact = world.coil;
    drive(&pin_contact, !world.contact);
  }
  boot_t *b = current_boot();
  double watts = world.contact ? (world.busy ? world.power_w : standby_w) : 0;
  if (b && world.contact) {
    b->relay_on_s += dt;
    if (world.busy) b->active_s += dt;
  }
  world.energy_j += watts * dt;
  double joules_per_pulse = 3.6e6 / imp_per_kwh;
  if (now >= world.pulse_end + S0_PULSE_S && world.energy_j >= joules_per_pulse) {
    world.energy_j -= joules_per_pulse;
    world.pulse_end = now + S0_PULSE_S;
    drive(&pin_s0, 0);
    if (b) b->pulses++;
  } else if (now >= world.pulse_end) {
    drive(&pin_s0, 1);
  }
  if (card.until > now && now >= card.next) {
    feed_put(&feed1, card.frame, sizeof card.frame);
    card.next = now + 0.1; /* the RDM6300 repeats a card while it stays in the field */
  }
}

static void adc_trigger_hook(avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq, (void)value, (void)param;
  /* an open analog pin: a few hundred mV of noise */
  avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0), 200 + (uint32_t)(random() % 400));
}

/* ---- commands ---- */

static const char *cause_names[] = {"unknown", "power-on", "brown-out", "watchdog", "software", "external", "firmware-update"};

static void reset_board(int mcusr_bit) {
  sim_now();
  avr_reset(avr);
  sim_now();
  avr->data[MCUSR_ADDR] |= (uint8_t)(1u << mcusr_bit);
  restore_inputs();
  coil_hook(NULL, 0, NULL); /* the pins float during reset: the coil drops */
}

static int parse_hex(const char *s, uint8_t *out, int max) {
  int n = 0;
  size_t len = strlen(s);
  if (len % 2) return -1;
  for (size_t i = 0; i < len; i += 2) {
    unsigned v;
    if (n == max || sscanf(s + i, "%2x", &v) != 1) return -1;
    out[n++] = (uint8_t)v;
  }
  return n;
}

static void print_truth(void) {
  double pulses = 0, relay_on = 0, active = 0;
  double r_energy = 0, r_relay = 0, r_active = 0;
  double mwh_per_pulse = 1e6 / imp_per_kwh;
  printf("ok {\"boots\":[");
  for (int i = 0; i < truth.nboots; i++) {
    boot_t *b = &truth.boots[i];
    pulses += b->pulses, relay_on += b->relay_on_s, active += b->active_s;
    r_energy += b->reported.energy_mwh, r_relay += b->reported.relay_on_s, r_active += b->reported.active_s;
    printf("%s{\"bootId\":%u,\"resetCause\":\"%s\",\"pulses\":%.0f,\"energyMwh\":%.0f,\"relayOnS\":%.3f,\"activeS\":%.3f,"
           "\"reported\":{\"energyMwh\":%u,\"relayOnS\":%u,\"activeS\":%u,\"filamentMm\":%u}}",
           i ? "," : "", b->boot_id, b->reset_cause < 7 ? cause_names[b->reset_cause] : "unknown", b->pulses, b->pulses * mwh_per_pulse,
           b->relay_on_s, b->active_s, b->reported.energy_mwh, b->reported.relay_on_s, b->reported.active_s, b->reported.filament_mm);
  }
  printf("],\"pulses\":%.0f,\"energyMwh\":%.0f,\"relayOnS\":%.3f,\"activeS\":%.3f,"
         "\"reported\":{\"energyMwh\":%.0f,\"relayOnS\":%.0f,\"activeS\":%.0f,\"filamentMm\":0},"
         "\"relay\":{\"requested\":%s,\"sensed\":%s},\"indications\":[",
         pulses, pulses * mwh_per_pulse, relay_on, active, r_energy, r_relay, r_active, world.coil ? "true" : "false", world.contact ? "true" : "false");
  for (int i = 0; i < truth.nindications; i++) {
    printf("%s{\"pattern\":%u,\"durationMs\":%u,\"text\":\"", i ? "," : "", truth.indications[i].pattern, truth.indications[i].duration_ms);
    for (const char *c = truth.indications[i].text; *c; c++)
      if (*c >= 0x20 && *c != '"' && *c != '\\') putchar(*c);
    printf("\"}");
  }
  printf("],\"framesOut\":%lu,\"framesIn\":%lu,\"corrupted\":%lu,\"simS\":%.3f}\n", truth.frames_out, truth.frames_in, truth.corrupted, sim_now());
}

static const char *help =
    "badge <10 hex digits>        hold an EM4100 card at the RDM6300 for 0.3 s\n"
    "busy on|off                  the tool's busy line\n"
    "power <watts>                power drawn while the relay is closed and the tool busy\n"
    "relay-stuck on|off           the relay contact stops following the coil\n"
    "corrupt <n>                  flip a byte in the next n frames from the node\n"
    "lose-ack <n>                 flip a byte in the next n ACK frames from the node\n"
    "reboot [external|power-on|brown-out|watchdog]  press reset, cycle power, dip the supply, or stall the main loop\n"
    "truth                        ground truth as JSON\n";

static int on_off(const char *w, int *out) {
  if (w && !strcmp(w, "on")) return *out = 1, 0;
  if (w && !strcmp(w, "off")) return *out = 0, 0;
  return -1;
}

static void command(char *line) {
  char *cmd = strtok(line, " \t\r\n"), *a = strtok(NULL, " \t\r\n");
  double now = sim_now();
  if (!cmd) return;
  if (!strcmp(cmd, "help")) {
    for (const char *p = help; *p; p++) putchar(*p == '\n' ? '\n' : *p);
    printf("ok\n");
  } else if (!strcmp(cmd, "badge")) {
    uint8_t uid[5];
    if (!a || parse_hex(a, uid, 5) != 5) return (void)printf("error badge: expected 10 hex digits (an EM4100 card: 5 bytes)\n");
    uint8_t x = uid[0] ^ uid[1] ^ uid[2] ^ uid[3] ^ uid[4];
    card.frame[0] = 0x02;
    for (int i = 0; i < 5; i++) snprintf((char *)card.frame + 1 + 2 * i, 3, "%02X", uid[i]);
    snprintf((char *)card.frame + 11, 3, "%02X", x);
    card.frame[13] = 0x03;
    card.until = now + 0.3;
    card.next = now;
    printf("ok\n");
  } else if (!strcmp(cmd, "busy")) {
    if (on_off(a, &world.busy)) return (void)printf("error busy: expected on or off\n");
    drive(&pin_busy, !world.busy);
    printf("ok\n");
  } else if (!strcmp(cmd, "relay-stuck")) {
    if (on_off(a, &world.stuck)) return (void)printf("error relay-stuck: expected on or off\n");
    printf("ok\n");
  } else if (!strcmp(cmd, "power")) {
    char *end;
    double w = a ? strtod(a, &end) : -1;
    if (!a || *end || w < 0) return (void)printf("error power: watts must be a non-negative number\n");
    world.power_w = w;
    printf("ok\n");
  } else if (!strcmp(cmd, "corrupt")) {
    int n = a ? atoi(a) : -1;
    if (n < 0) return (void)printf("error corrupt: n must be a non-negative number\n");
    corrupt_next += n;
    printf("ok\n");
  } else if (!strcmp(cmd, "lose-ack")) {
    int n = a ? atoi(a) : -1;
    if (n < 0) return (void)printf("error lose-ack: n must be a non-negative number\n");
    lose_acks += n;
    printf("ok\n");
  } else if (!strcmp(cmd, "reboot")) {
    if (!a || !strcmp(a, "watchdog")) avr->data[GPIOR1_ADDR] = STALL_MAGIC; /* the main loop hangs; the watchdog resets the board */
    else if (!strcmp(a, "external")) reset_board(EXTRF);
    else if (!strcmp(a, "power-on")) reset_board(PORF);
    else if (!strcmp(a, "brown-out")) reset_board(BORF);
    else return (void)printf("error reboot: cause must be one of external, power-on, brown-out, watchdog\n");
    printf("ok\n");
  } else if (!strcmp(cmd, "truth")) {
    print_truth();
  } else {
    printf("error unknown command \"%s\" (type help)\n", cmd);
  }
}

static char in_line[1024];
static size_t in_len;

/* Returns 0 at the end of stdin. */
static int stdin_service(void) {
  char buf[512];
  ssize_t n = read(0, buf, sizeof buf);
  if (n == 0) return 0;
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != '\n') {
      if (in_len < sizeof in_line - 1) in_line[in_len++] = buf[i];
      continue;
    }
    in_line[in_len] = 0;
    in_len = 0;
    command(in_line);
  }
  fflush(stdout);
  return 1;
}

static void no_sleep(avr_t *a, avr_cycle_count_t how_long) { (void)a, (void)how_long; } /* main() paces to wall time */

int main(int argc, char **argv) {
  const char *elf = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--imp-per-kwh") && i + 1 < argc) imp_per_kwh = atof(argv[++i]);
    else if (!strcmp(argv[i], "--standby") && i + 1 < argc) standby_w = atof(argv[++i]);
    else elf = argv[i];
  }
  if (!elf || imp_per_kwh <= 0) {
    fprintf(stderr, "usage: node-sim [--imp-per-kwh N] [--standby W] <firmware.elf>\n");
    return 2;
  }
  elf_firmware_t fw;
  memset(&fw, 0, sizeof fw);
  if (elf_read_firmware(elf, &fw) != 0) {
    fprintf(stderr, "node-sim: cannot read the firmware %s\n", elf);
    return 1;
  }
  avr = avr_make_mcu_by_name("atmega2560");
  if (!avr) {
    fprintf(stderr, "node-sim: this simavr has no atmega2560\n");
    return 1;
  }
  avr_init(avr);
  avr->frequency = (uint32_t)F_CPU;
  avr->sleep = no_sleep;
  avr->log = LOG_ERROR;
  avr_load_firmware(avr, &fw);
  srandom((unsigned)(wall_now() * 1e6));

  int slave;
  char name[256];
  if (openpty(&pty_fd, &slave, name, NULL, NULL) < 0) {
    perror("node-sim: openpty");
    return 1;
  }
  struct termios tio;
  tcgetattr(pty_fd, &tio);
  cfmakeraw(&tio);
  tcsetattr(pty_fd, TCSANOW, &tio);
  fcntl(pty_fd, F_SETFL, O_NONBLOCK);
  ovn_framer_init(&out_framer);
  ovn_framer_init(&in_framer);

  connect_uart('0', &feed0, uart0_out_hook);
  connect_uart('1', &feed1, NULL);
  for (size_t i = 0; i < sizeof inputs / sizeof inputs[0]; i++) {
    inputs[i]->irq = avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ(inputs[i]->port), inputs[i]->bit);
    drive(inputs[i], 1); /* S0 open, tool idle, contact open: all pulled up */
  }
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ('H'), 4), coil_hook, NULL);
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_OUT_TRIGGER), adc_trigger_hook, NULL);
  world.pulse_end = -1;

  printf("pty %s\n", name);
  fflush(stdout);
  fcntl(0, F_SETFL, O_NONBLOCK);

  start = wall_now();
  for (;;) {
    /* run a millisecond of simulated time, then catch up with the wall clock */
    double target = sim_now() + 0.001;
    while (sim_now() < target) {
      int state = avr_run(avr);
      if (state == cpu_Done || state == cpu_Crashed) {
        fprintf(stderr, "node-sim: the simulated CPU stopped (%s)\n", state == cpu_Done ? "done" : "crashed");
        return 1;
      }
    }
    double now = sim_now();
    world_step(now);
    feed_flush(&feed1);
    double ahead = now - (wall_now() - start);
    if (ahead < -0.05) { /* starved of CPU: time slips, as a real MCU never runs fast to catch up */
      start += -ahead - 0.05;
      ahead = -0.05;
    }
    struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = pty_fd, .events = POLLIN | (to_pty_len ? POLLOUT : 0)}};
    int wait_ms = ahead > 0.001 ? (int)(ahead * 1000) : 0;
    if (poll(fds, 2, wait_ms) > 0) {
      if ((fds[0].revents & (POLLIN | POLLHUP)) && !stdin_service()) return 0;
      if (fds[1].revents) pty_service();
    }
    if (to_pty_len) pty_service();
  }
}
