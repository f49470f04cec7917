// The commands of the rtdw CLI, one class each (shaped like RocksDB's ldb): a command says its
// group and name (`offsets set`), its help, how it uses the state stores, its own flags, and runs.
// main() builds the command line and --help from the registry and dispatches to the one parsed.
//
// Adding a command: a class deriving from Command in its group's file (offsets_commands.cc, ...),
// added to the registry by that file's Register*Commands(); docs/STATE.md documents its output
// and docs/DEVELOPING.md the steps.
//
// Thread-safety: none needed; the CLI runs one command on one thread.
#ifndef RTDW_TOOLS_RTDW_COMMAND_H_
#define RTDW_TOOLS_RTDW_COMMAND_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "CLI/CLI.hpp"
#include "tools/rtdw/cli.h"

namespace rtdw::cli {

// Flags that several commands take and that main() resolves into Globals (one value per run).
struct SharedFlags {
  std::string es_url;            // --es-url of journal replay, dedup restore / forget, verify
  double replay_timeout_s = 60;  // journal replay --timeout
};

class Command {
 public:
  virtual ~Command() = default;
  // The group ("offsets"; "" for a top-level command such as verify) and the name ("set").
  virtual std::string_view group() const = 0;
  virtual std::string_view name() const = 0;
  // One paragraph for --help.
  virtual std::string_view help() const = 0;
  // How the command uses the stores; OpenWrite() and creating a store are refused (an internal
  // error) to a command that did not declare them.
  virtual StoreAccess access() const = 0;
  // Declares the command's own flags on its subcommand; their values land in the command.
  virtual void AddFlags(CLI::App* app, SharedFlags* shared) {
    (void)app;
    (void)shared;
  }
  // Runs the parsed command: fills `out` and returns the exit code (kExitOk, kExitFailed,
  // kExitUsage; cli.h's rules).
  virtual int Run(const Globals& g, Out& out) = 0;
};

// The commands of a run of rtdw, in --help order.
class CommandRegistry {
 public:
  struct Group {
    std::string name;  // "" holds the top-level commands
    std::string help;
  };
  // Declares a group; its commands are listed under it in the order they are added.
  void AddGroup(std::string name, std::string help);
  void Add(std::unique_ptr<Command> command);

  const std::vector<Group>& groups() const { return groups_; }
  const std::vector<std::unique_ptr<Command>>& commands() const { return commands_; }

 private:
  std::vector<Group> groups_;
  std::vector<std::unique_ptr<Command>> commands_;
};

// Every rtdw command (each group file registers its own).
CommandRegistry AllCommands();
void RegisterStateCommands(CommandRegistry* r);       // state_commands.cc
void RegisterOffsetsCommands(CommandRegistry* r);     // offsets_commands.cc
void RegisterJournalCommands(CommandRegistry* r);     // journal_commands.cc
void RegisterDeadLetterCommands(CommandRegistry* r);  // deadletter_commands.cc
void RegisterDedupCommands(CommandRegistry* r);       // dedup_commands.cc (dedup, verify)
void RegisterBackupCommands(CommandRegistry* r);      // backup_commands.cc
void RegisterMetaCommands(CommandRegistry* r);        // meta_commands.cc

}  // namespace rtdw::cli

#endif  // RTDW_TOOLS_RTDW_COMMAND_H_
