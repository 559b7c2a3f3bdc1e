"""The `meshward` command line: the one package that depends on both the compiler and the reconciler.

It only parses arguments and dispatches; the compiler (`compiler`) and the reconciler (`reconciler`) know nothing
of it, so neither has to import the other to offer its commands.
"""
