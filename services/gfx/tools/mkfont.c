/* mkfont.c: renders printable ASCII of a TrueType font into the 1-bit
 * rows font.c embeds (run by hand, not built): mkfont FONT.ttf PX W H BASELINE. */
#include <ft2build.h>
#include FT_FREETYPE_H
#include <stdio.h>
int main(int argc,char**argv){
 FT_Library lib; FT_Face f; FT_Init_FreeType(&lib);
 if(FT_New_Face(lib,argv[1],0,&f)){fprintf(stderr,"face\n");return 1;}
 int px=atoi(argv[2]); FT_Set_Pixel_Sizes(f,0,px);
 int W=atoi(argv[3]),H=atoi(argv[4]),base=atoi(argv[5]);
 printf("/* generated */\n");
 for(int ch=32;ch<127;ch++){
  FT_Load_Char(f,ch,FT_LOAD_RENDER|FT_LOAD_TARGET_MONO|FT_LOAD_MONOCHROME);
  FT_GlyphSlot g=f->glyph; unsigned char rows[32]={0};
  for(int y=0;y<(int)g->bitmap.rows;y++){int dy=base-g->bitmap_top+y; if(dy<0||dy>=H)continue;
   for(int x=0;x<(int)g->bitmap.width;x++){int dx=g->bitmap_left+x; if(dx<0||dx>=W)continue;
    if(g->bitmap.buffer[y*g->bitmap.pitch+x/8]&(0x80>>(x%8))) rows[dy]|=(unsigned char)(0x80>>dx);}}
  printf("\t{");for(int y=0;y<H;y++)printf("0x%02x%s",rows[y],y<H-1?",":"");printf("}, /* '%s%c' */\n",ch=='\\'||ch=='\''?"\\":"",ch);
 }
}
