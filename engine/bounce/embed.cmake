# embed.cmake - write the file IN as a C string (bounce_rules_default_text) to OUT.
# Run at build time by CMakeLists.txt: the shipped rules are compiled in, so a
# volley binary classifies without an installed etc/ directory.
file(READ ${IN} hex HEX)
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," arr "${hex}")
file(WRITE ${OUT} "/* generated from etc/bounce_rules.conf by engine/bounce/embed.cmake */\n"
     "#include <stddef.h>\n"
     "extern const char bounce_rules_default_text[];\n"
     "extern const size_t bounce_rules_default_len;\n"
     "const char bounce_rules_default_text[] = {${arr} 0x00};\n"
     "const size_t bounce_rules_default_len = sizeof bounce_rules_default_text - 1;\n")
