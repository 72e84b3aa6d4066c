/* Small compiler helpers shared by every module. */
#ifndef CREDFS_COMPILER_H
#define CREDFS_COMPILER_H

#define WUR __attribute__((warn_unused_result))
#define PRINTF_LIKE(fmt, args) __attribute__((format(printf, fmt, args)))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
