# Writes a copy of a source file with one deliberate bug planted, for the tests
# that prove the model checker catches it. Fails if the pattern is not found,
# so a refactoring cannot silently turn a mutant into the original.
file(READ "${IN}" text)
string(FIND "${text}" "${FROM}" at)
if(at EQUAL -1)
  message(FATAL_ERROR "mutant ${NAME}: pattern not found in ${IN}: ${FROM}")
endif()
string(REPLACE "${FROM}" "${TO}" text "${text}")
file(WRITE "${OUT}" "${text}")
