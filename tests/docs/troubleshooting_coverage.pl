#!/usr/bin/perl
# docs/troubleshooting.md must explain every message and event an operator may
# meet. This collects them from the sources and fails, listing what is
# missing, when the document does not have one:
#   - every Error("...") of common/, monitor/, keeper/, cli/ whose message is a
#     literal (adjacent literals joined);
#   - every RAISE EXCEPTION '...' of sql/ (what the CLI prints as the monitor's
#     reason);
#   - every event rule: the group state machine's rules (pgfailover do fsm), the
#     decider's other events, and the operator requests logged by sql/.
# In the document a message is written as the operator sees it, each
# placeholder ({} in C++, % in SQL) as <anything>, e.g.
#   `node "<name>" is not registered in formation "<formation>"`
# and an event rule as `rule-name`.
# usage: troubleshooting_coverage.pl SOURCE_DIR DOC PGFAILOVER_BINARY [--list]
use strict;
use warnings;
my ($src, $doc, $bin, $list) = @ARGV;
die "usage: $0 SOURCE_DIR DOC PGFAILOVER_BINARY [--list]\n" unless $bin;

sub slurp { my $f = shift; open my $fh, '<', $f or die "$f: $!"; local $/; my $t = <$fh>; close $fh; return $t }
sub line_of { my ($text, $pos) = @_; return 1 + (() = substr($text, 0, $pos) =~ /\n/g) }

my @wanted;  # [kind, where, text]
my @sources = sort map { s{^\Q$src\E/}{}r } grep { -f } glob("$src/{common,monitor,keeper,cli}/*.{cpp,h}");
for my $f (@sources) {
  my $text = slurp("$src/$f");
  while ($text =~ /\bError\(\s*((?:"(?:[^"\\]|\\.)*"\s*)+)/g) {
    my ($lits, $pos) = ($1, $-[0]);
    my $msg = join '', ($lits =~ /"((?:[^"\\]|\\.)*)"/g);
    $msg =~ s/\\"/"/g; $msg =~ s/\\n/ /g; $msg =~ s/\\\\/\\/g;
    next if $msg =~ /^\{\}$|^\{\}: \{\}$/;  # a bare pass-through of another message
    my $line_start = rindex($text, "\n", $pos) + 1;
    next if substr($text, $line_start, $pos - $line_start) =~ m{//};  # an example in a comment
    push @wanted, ['message', "$f:" . line_of($text, $pos), $msg];
  }
  while ($text =~ /events\.push_back\(\{[^"]*"([a-z][a-z-]+)"/g) {
    push @wanted, ['event', "$f:" . line_of($text, $-[0]), $1];
  }
}
for my $f (sort map { s{^\Q$src\E/}{}r } glob("$src/sql/*.sql")) {
  my $text = slurp("$src/$f");
  while ($text =~ /RAISE\s+EXCEPTION\s+'((?:[^']|'')*)'/g) {
    (my $msg = $1) =~ s/''/'/g;
    push @wanted, ['message', "$f:" . line_of($text, $-[0]), $msg];
  }
  while ($text =~ /log_event\([^;]*?'([a-z][a-z-]+)'/g) {
    push @wanted, ['event', "$f:" . line_of($text, $-[0]), $1];
  }
  while ($text =~ /kind \|\| '(-[a-z]+)'/g) {
    push @wanted, ['event', "$f:" . line_of($text, $-[0]), "$_$1"] for qw(switchover failover promotion);
  }
}
for (split /\n/, `'$bin' do fsm`) {
  push @wanted, ['event', 'pgfailover do fsm', $1] if /^  ([a-z][a-z-]+): /;
}
die "found no rules in `$bin do fsm`\n" unless grep { $_->[1] eq 'pgfailover do fsm' } @wanted;

my $text = slurp($doc);
my (%seen, @missing);
for my $w (@wanted) {
  my ($kind, $where, $msg) = @$w;
  next if $seen{"$kind\t$msg"}++;
  my $re;
  if ($kind eq 'event') {
    $re = qr/`\Q$msg\E`/;
  } else {
    my @parts = split /\{[^{}]*\}|%/, $msg, -1;
    # A placeholder that ends the message is often empty (a hint, a suffix).
    my $tail = @parts > 1 && $parts[-1] eq '' ? pop(@parts) : undef;
    my $pattern = join '<[^<>`]+>', map { quotemeta } @parts;
    $pattern .= '(?:<[^<>`]+>)?' if defined $tail;
    $re = qr/$pattern/;
  }
  if ($list) { print "$kind\t$where\t$msg\n"; next }
  push @missing, "$where: $kind: $msg" unless $text =~ $re;
}
exit 0 if $list;
my $n = scalar keys %seen;
if (@missing) {
  print STDERR "$doc does not explain ", scalar(@missing), " of $n messages and events:\n";
  print STDERR "  $_\n" for @missing;
  print STDERR "Write each as the operator sees it, placeholders as <name> (messages) or `rule` (events).\n";
  exit 1;
}
print "$doc explains all $n messages and events\n";
