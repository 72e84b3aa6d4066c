/* The commands that do not mount: keygen, oidc, check.  Each returns the
 * process exit status (0 success, 1 runtime failure, 2 usage or config). */
#ifndef CREDFS_COMMANDS_H
#define CREDFS_COMMANDS_H

#include "daemon.h"
#include "generation.h"


int cmd_keygen(int argc, char **argv);
int cmd_oidc(int argc, char **argv);
int cmd_check(int argc, char **argv);

/* Loads and validates a configuration and its signer, printing
 * "FILE:LINE: text" to stderr on failure.  Returns 0 and *gen, or
 * EXIT_USAGE. */
int load_config(const char *path, struct generation **gen);

#endif
