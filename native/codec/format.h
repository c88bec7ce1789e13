// Text forms of addresses as iproute2 prints them, and their parsers (input was validated in
// TypeScript; a parse failure here is still reported, never ignored).
#pragma once
#include <arpa/inet.h>
#include <netinet/in.h>

#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

namespace vnl {

inline std::string macToString(const uint8_t* p, size_t n) {
  std::string s;
  char b[4];
  for (size_t i = 0; i < n; i++) {
    snprintf(b, sizeof b, i ? ":%02x" : "%02x", p[i]);
    s += b;
  }
  return s;
}

inline std::string parseMac(const std::string& s, const char* field) {
  unsigned b[6];
  char tail;
  if (sscanf(s.c_str(), "%2x:%2x:%2x:%2x:%2x:%2x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6)
    throw std::invalid_argument(std::string(field) + " is not a MAC address: " + s);
  std::string out(6, '\0');
  for (int i = 0; i < 6; i++) out[i] = static_cast<char>(b[i]);
  return out;
}

struct IpAddr {
  int family = 0;  // AF_INET or AF_INET6
  uint8_t bytes[16] = {0};
  size_t len() const { return family == AF_INET ? 4 : 16; }
};

inline IpAddr parseIp(const std::string& s, const char* field) {
  IpAddr a;
  if (inet_pton(AF_INET, s.c_str(), a.bytes) == 1) a.family = AF_INET;
  else if (inet_pton(AF_INET6, s.c_str(), a.bytes) == 1) a.family = AF_INET6;
  else throw std::invalid_argument(std::string(field) + " is not an IP address: " + s);
  return a;
}

inline std::string ipToString(int family, const void* p) {
  char b[INET6_ADDRSTRLEN] = {0};
  inet_ntop(family, p, b, sizeof b);
  return b;
}

}  // namespace vnl
