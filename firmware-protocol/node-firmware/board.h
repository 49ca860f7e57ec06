/*
 * The board: an ATmega2560 at 16 MHz (Arduino Mega 2560 class). Pins, by Arduino name:
 *
 *   D0/D1   RX0/TX0  the gateway (the board's USB serial), 115200 8N1
 *   D19     RX1      RDM6300 TX, 9600 8N1
 *   D2      PE4      S0 pulse input of the energy meter (INT4, falling edge, internal pull-up)
 *   D4      PG5      busy input: an optocoupler pulls it low while the tool works (pull-up)
 *   D7      PH4      relay coil driver, high = on
 *   D8      PH5      relay feedback contact to GND, low = closed (pull-up)
 *   D9      PH6      buzzer (active), high = sounding
 *   D13     PB7      status LED
 *   A0      PF0      left open: ADC noise for the boot id
 */
#ifndef BOARD_H
#define BOARD_H

#include <stdint.h>

void board_init(void);
/** Milliseconds since boot (Timer1, 1 ms tick). */
uint32_t millis(void);

/** Next byte from the gateway, or -1. */
int gateway_getc(void);
void gateway_write(const uint8_t *data, uint16_t len);
/** Next byte from the RDM6300, or -1. */
int reader_getc(void);

/** S0 pulses counted since boot and the time of the last two (ms since boot; 0 when none yet). */
typedef struct {
  uint32_t count;
  uint32_t last_ms;
  uint32_t interval_ms;
} s0_t;
void s0_read(s0_t *out);

/** Raw input levels, true when active (busy: the tool works; contact: the relay is closed). */
uint8_t busy_raw(void);
uint8_t contact_raw(void);
void relay_drive(uint8_t on);
void led_set(uint8_t on);
void buzzer_set(uint8_t on);

/** A 16-bit sample of the open analog pin, for entropy. */
uint16_t adc_noise(void);

#endif
